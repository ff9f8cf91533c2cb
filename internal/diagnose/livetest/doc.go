// Package livetest runs petrel's diagnosis against a real Kubernetes control
// plane (kube-apiserver, scheduler, controller-manager, etcd) with kwok
// nodes, from test/cluster: the scheduler writes the FailedScheduling
// events, the Job controller the conditions and the quota admission the
// FailedCreate events that the analysers read. It holds tests only.
package livetest
