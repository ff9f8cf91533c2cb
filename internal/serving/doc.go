// Package serving runs an InferenceService on one machine the way
// Kubernetes runs a Deployment behind a Service with a
// HorizontalPodAutoscaler: supervised replica processes (CrashLoopBackOff
// restarts, kubelet-style probes, drain on scale-down), a reverse-proxy load
// balancer that routes only to ready replicas, the HPA scaling algorithm over
// CPU utilisation or load-balancer concurrency, and rolling updates that
// honour maxSurge/maxUnavailable.
//
// The pieces are usable alone: LoadBalancer, Autoscaler, Prober,
// CrashLoopBackOff and the metric samplers each have their own tests. The
// Service controller ties them together over a Runner, so the local engine
// can start replicas through its own process shim while tests use ExecRunner.
package serving
