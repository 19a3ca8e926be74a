//go:build !linux
// +build !linux

package main

import "os/exec"

// setProcAttr has nothing to add outside Linux (no parent-death signal).
func setProcAttr(cmd *exec.Cmd) {}

func setGroupProcAttr(cmd *exec.Cmd) {}

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
}
