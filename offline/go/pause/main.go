// Command pause is the sandbox ("pause") container of the offline e2e cluster: PID 1 of every pod,
// holding its namespaces. Like upstream's C pause program it sleeps until SIGINT or SIGTERM and reaps
// the zombies it inherits. Built by scripts/go-tool.sh pause, packaged by offline/kind-node/k8s-images.sh.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("warning: pause should be the first process\n")
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
