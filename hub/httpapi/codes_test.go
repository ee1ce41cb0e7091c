package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/storage"
)

// Finding 14 (in part): error messages do not name the backend.
func TestErrorsDoNotNameTheBackend(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("fs: blob /var/lib/guildhall/blobs/ab/cd: %w", storage.ErrNotFound),
		fmt.Errorf("postgres: dial tcp 10.1.2.3:5432: %w", storage.ErrUnavailable),
		fmt.Errorf("s3: bucket guildhall-prod: %w", storage.ErrUnavailable),
		fmt.Errorf("sqlite: /data/hub.db: disk I/O error"),
	} {
		we := wireError(err)
		for _, leak := range []string{"fs:", "postgres", "s3:", "sqlite", "10.1.2.3", "/var/lib", "/data", "bucket"} {
			if strings.Contains(we.Message, leak) {
				t.Errorf("%v: message %q names %q", err, we.Message, leak)
			}
		}
	}
}
