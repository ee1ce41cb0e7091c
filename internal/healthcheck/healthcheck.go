// Package healthcheck is the probe the binaries run as their container
// HEALTHCHECK: a runtime image holds no shell or curl, so "hub -healthcheck
// URL" asks the URL itself and exits 0 only on a 2xx answer.
package healthcheck

import (
	"fmt"
	"net/http"
	"time"
)

// Probe GETs url within two seconds and reports whether it answered 2xx.
func Probe(url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
