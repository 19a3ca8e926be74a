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

// setGroupProcAttr is setProcAttr plus a process group of its own, so that
// killGroup also reaches any children holding the output pipes open.
func setGroupProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
