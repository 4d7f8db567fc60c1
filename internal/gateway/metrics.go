package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the gateway's Prometheus series. Labels are reason codes,
// never device ids or patients.
type metrics struct {
	reg            *prometheus.Registry
	accepted       prometheus.Counter
	duplicates     prometheus.Counter
	rejected       *prometheus.CounterVec
	queued         prometheus.Gauge
	forwarded      prometheus.Counter
	upstreamRefuse *prometheus.CounterVec
	upstreamErrors prometheus.Counter
	acceptLatency  prometheus.Histogram
	forwardLatency prometheus.Histogram
	statusRevision prometheus.Gauge
	statusErrors   prometheus.Counter
}

func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 18)
	m := &metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_gateway_accepted_total",
			Help: "Device messages accepted and durably queued."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_gateway_duplicates_total",
			Help: "Device messages received again and acknowledged again (stored once)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_gateway_rejected_total",
			Help: "Device messages refused, by reason."}, []string{"reason"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "medsec_gateway_queued",
			Help: "Messages waiting in the durable queue for the hospital."}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_gateway_forwarded_total",
			Help: "Messages the hospital confirmed stored (or stored before)."}),
		upstreamRefuse: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_gateway_upstream_rejected_total",
			Help: "Messages the hospital refused for good, by reason."}, []string{"reason"}),
		upstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_gateway_upstream_errors_total",
			Help: "Failed deliveries to the hospital (retried with backoff)."}),
		acceptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medsec_gateway_accept_seconds",
			Help: "Time from a device's request to its acknowledgement.", Buckets: buckets}),
		forwardLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medsec_gateway_forward_seconds",
			Help: "Time from acknowledgement to the hospital's confirmation.", Buckets: buckets}),
		statusRevision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "medsec_gateway_status_list_revision",
			Help: "Revision of the device status list in force."}),
		statusErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_gateway_status_list_errors_total",
			Help: "Failed status list polls."}),
	}
	m.reg.MustRegister(m.accepted, m.duplicates, m.rejected, m.queued, m.forwarded, m.upstreamRefuse, m.upstreamErrors,
		m.acceptLatency, m.forwardLatency, m.statusRevision, m.statusErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
