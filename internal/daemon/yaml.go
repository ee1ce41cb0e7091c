package daemon

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// LoadYAML decodes the YAML file at path into dst strictly: a key dst has
// no field for is an error, so a misspelt setting never silently falls
// back to its default. Errors name the file.
func LoadYAML(path string, dst any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
