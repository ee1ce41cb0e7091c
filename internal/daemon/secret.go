package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// readPrivate reads a file that holds secrets. It refuses a file that
// others (neither its owner nor its group) may read: a group-readable file
// (0640) is how a secret is shared with the service account's group, as
// docs/OPERATIONS.md installs them.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat() // of the file opened, not of whatever the path names later
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s is readable by others (chmod 640 or 600)", path)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ReadSecret returns the content of a secret file (a token, a key),
// without surrounding white space. A file readable by others is refused.
func ReadSecret(path string) (string, error) {
	b, err := readPrivate(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadSecretLines returns the lines of a secret file that hold something:
// blank lines and lines starting with # are skipped, and each line is
// trimmed. A file readable by others is refused.
func ReadSecretLines(path string) ([]string, error) {
	b, err := readPrivate(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
