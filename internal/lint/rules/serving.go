package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/petrel-dev/petrel/internal/lint"
)

// servingContainers returns the containers of w that serve traffic, with
// the reason w counts as a server, or nil when it does not. w must be a
// Deployment, StatefulSet, ReplicaSet or LeaderWorkerSet (multi-node model
// servers) that declares a container port,
// is selected by a Service, is scaled by an HPA or runs a known server.
// Serving containers are those with ports, else those that look like
// servers, else the first container.
func servingContainers(s *lint.Set, w *lint.Workload) ([]int, string) {
	switch w.Kind {
	case "Deployment", "StatefulSet", "ReplicaSet", "LeaderWorkerSet":
	default:
		return nil, ""
	}
	var withPorts, servers []int
	for i, c := range w.PodSpec.Containers {
		if len(c.Ports) > 0 {
			withPorts = append(withPorts, i)
		}
		if ok, _ := looksLikeServer(c.Image, c.Command, c.Args); ok {
			servers = append(servers, i)
		}
	}
	why := ""
	if svcs := s.ServicesFor(w); len(svcs) > 0 {
		why = fmt.Sprintf("Service %s sends it traffic", svcs[0].Name)
	} else if len(withPorts) > 0 {
		why = "it declares a container port"
	} else if len(servers) > 0 {
		why = "it runs a server"
	} else if len(s.HPAsFor(w)) > 0 {
		why = "an HPA scales it"
	} else {
		return nil, ""
	}
	switch {
	case len(withPorts) > 0:
		return withPorts, why
	case len(servers) > 0:
		return servers, why
	case len(w.PodSpec.Containers) > 0:
		return []int{0}, why
	}
	return nil, ""
}

// containerName quotes a container's name for messages.
func containerName(c *corev1.Container) string { return fmt.Sprintf("%q", c.Name) }
