package clienttest

import (
	"os/exec"
	"syscall"
)

// Command runs a one-shot hub command ("hub COMMAND", e.g. mark-restored)
// with the hub's configuration, and returns what it printed. Run it with
// the hub stopped, as an operator would.
func (h *Hub) Command(args ...string) string {
	h.t.Helper()
	h.writeConfig()
	out, err := exec.Command(buildHub(h.t), append([]string{"-config", h.config}, args...)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("hub %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Reload writes the hub's configuration again (Admission, Extra) and sends
// the running hub SIGHUP, as "systemctl reload" does.
func (h *Hub) Reload() {
	h.t.Helper()
	h.writeConfig()
	if h.cmd == nil {
		h.t.Fatal("reload: the hub is not running")
	}
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		h.t.Fatal(err)
	}
}
