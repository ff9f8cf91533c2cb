package ui

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/petrel-dev/petrel/internal/backend"
)

var (
	jobsDesc = prometheus.NewDesc("petrel_jobs",
		"Training jobs by phase (Pending, Running, Complete, Failed).", []string{"phase"}, nil)
	attemptsDesc = prometheus.NewDesc("petrel_job_attempts",
		"Attempts of the training jobs in the store, by pod phase and termination reason (empty while running).", []string{"phase", "reason"}, nil)
	gpusDesc = prometheus.NewDesc("petrel_gpus",
		"GPUs of this machine by state: allocated to a running attempt, or free.", []string{"state"}, nil)
	replicasDesc = prometheus.NewDesc("petrel_service_replicas",
		"Replicas of each inference service: desired (by spec or autoscaler) and ready.", []string{"service", "state"}, nil)
	restartsDesc = prometheus.NewDesc("petrel_service_replica_restarts",
		"Restarts of the service's current replicas, summed (the kubelet's restartCount).", []string{"service"}, nil)
)

// Collector reports the state of a backend's workloads to Prometheus at
// each scrape: petrel_jobs{phase}, petrel_job_attempts{phase,reason},
// petrel_gpus{state} (when gpus is set), petrel_service_replicas and
// petrel_service_replica_restarts. They are gauges of what the store holds
// now, so deleting a job lowers them.
type Collector struct {
	src backend.Backend
	// gpus returns how many GPUs the machine has (nil: not reported).
	gpus func() int
}

// NewCollector returns a collector over src; gpus, when not nil, returns
// the machine's GPU count.
func NewCollector(src backend.Backend, gpus func() int) *Collector {
	return &Collector{src: src, gpus: gpus}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{jobsDesc, attemptsDesc, gpusDesc, replicasDesc, restartsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if jobs, err := c.src.ListJobs(ctx); err == nil {
		phases := map[backend.JobPhase]int{backend.JobPending: 0, backend.JobRunning: 0, backend.JobComplete: 0, backend.JobFailed: 0}
		type pr struct{ phase, reason string }
		attempts := map[pr]int{}
		allocated := 0
		for _, j := range jobs {
			phases[j.Phase]++
			for _, a := range j.Attempts {
				attempts[pr{string(a.Phase), a.Reason}]++
				if a.Phase == "Running" {
					allocated += len(a.GPUs)
				}
			}
		}
		for p, n := range phases {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), string(p))
		}
		for k, n := range attempts {
			ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.GaugeValue, float64(n), k.phase, k.reason)
		}
		if c.gpus != nil {
			total := c.gpus()
			ch <- prometheus.MustNewConstMetric(gpusDesc, prometheus.GaugeValue, float64(allocated), "allocated")
			ch <- prometheus.MustNewConstMetric(gpusDesc, prometheus.GaugeValue, float64(max(0, total-allocated)), "free")
		}
	}
	if svcs, err := c.src.ListServices(ctx); err == nil {
		for _, s := range svcs {
			var restarts int32
			for _, r := range s.Replicas {
				restarts += r.Restarts
			}
			ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, float64(s.DesiredReplicas), s.Name, "desired")
			ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, float64(s.ReadyReplicas), s.Name, "ready")
			ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.GaugeValue, float64(restarts), s.Name)
		}
	}
}
