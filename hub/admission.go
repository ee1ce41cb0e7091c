package hub

import "fmt"

// ParseAdmission reads an admission mode by the name configuration files
// use: open, allow-list, provisioned or home.
func ParseAdmission(s string) (Admission, error) {
	for a, name := range admissionNames {
		if s == name {
			return Admission(a), nil
		}
	}
	return 0, fmt.Errorf("%q: want open, allow-list, provisioned or home", s)
}

// String returns the mode's name, as ParseAdmission reads it.
func (a Admission) String() string {
	if int(a) < len(admissionNames) {
		return admissionNames[a]
	}
	return fmt.Sprintf("Admission(%d)", int(a))
}

// admissionNames are indexed by Admission.
var admissionNames = [...]string{Provisioned: "provisioned", AllowList: "allow-list", Open: "open", Home: "home"}
