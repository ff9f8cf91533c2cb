package rules

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/petrel-dev/petrel/internal/backend"
	"github.com/petrel-dev/petrel/internal/lint"
)

func init() {
	register(&lint.Rule{
		ID:       "PTL-SRV-004",
		Severity: backend.SeverityError,
		Summary:  "probe names a port (port: http) that the container does not declare",
		Why: "The kubelet resolves a named probe port among the container's own ports. When no port has that name " +
			"every probe fails: a readiness probe keeps the pod out of the Service for ever, a liveness or startup " +
			"probe restarts the container in a loop.",
		Fix:   "name the container port (ports: [{name: http, containerPort: 8000}]) or give the probe the port number",
		Kinds: podKinds,
		Check: func(p *lint.Pass) {
			for _, c := range containers(p.Set, false) {
				named := map[string]bool{}
				for _, port := range c.c.Ports {
					if port.Name != "" {
						named[port.Name] = true
					}
				}
				for _, pr := range []struct {
					name  string
					probe *corev1.Probe
				}{{"readinessProbe", c.c.ReadinessProbe}, {"livenessProbe", c.c.LivenessProbe}, {"startupProbe", c.c.StartupProbe}} {
					if pr.probe == nil {
						continue
					}
					port, at := probePort(pr.probe)
					if port == nil || port.Type != intstr.String || named[port.StrVal] {
						continue
					}
					p.Report(c.w.Object, c.path.Key(append([]any{pr.name}, at...)...),
						fmt.Sprintf("add {name: %s, containerPort: N} to the ports of container %q, or use the number", port.StrVal, c.c.Name),
						"the %s of container %q uses port %q, which the container does not declare; the probe can never succeed", pr.name, c.c.Name, port.StrVal)
				}
			}
		},
	})
}

// probePort returns the port of an httpGet, tcpSocket or grpc probe (nil
// for exec) and the path below the probe.
func probePort(p *corev1.Probe) (*intstr.IntOrString, []any) {
	switch {
	case p.HTTPGet != nil:
		return &p.HTTPGet.Port, []any{"httpGet", "port"}
	case p.TCPSocket != nil:
		return &p.TCPSocket.Port, []any{"tcpSocket", "port"}
	}
	return nil, nil
}
