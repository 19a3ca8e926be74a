package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel SIGKILL the plugin if sphost dies without
// killing it (e.g. a test harness SIGKILLs sphost on timeout), so that no
// plugin process is orphaned. It changes nothing on the wire.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
