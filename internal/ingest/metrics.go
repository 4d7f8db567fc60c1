package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics count what ingestion does; reasons are the stable codes of
// packages phd, devices and ingest, never ids or values.
type metrics struct {
	messages *prometheus.CounterVec // by outcome
	rejected *prometheus.CounterVec // by reason
	readings prometheus.Counter
	flagged  prometheus.Counter
	refused  prometheus.Counter
	bundle   prometheus.Histogram
	gateways *prometheus.CounterVec // refused gateway requests by reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_ingest_messages_total",
			Help: "Device messages received from gateways, by outcome (stored, duplicate, rejected, retry)."}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_ingest_rejected_total",
			Help: "Device messages refused, by reason."}, []string{"reason"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_ingest_readings_total", Help: "Readings stored."}),
		flagged: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_ingest_readings_flagged_total",
			Help: "Readings stored flagged outside physiological limits."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "medsec_ingest_measurements_refused_total",
			Help: "Measurements refused inside otherwise valid messages (unknown code, unit, time)."}),
		bundle: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medsec_ingest_bundle_seconds",
			Help: "Time to process one gateway bundle.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		gateways: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medsec_ingest_gateway_refused_total",
			Help: "Gateway requests refused before any message was read, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.rejected, m.readings, m.flagged, m.refused, m.bundle, m.gateways)
	}
	return m
}

func (m *metrics) observe(results []Result, took time.Duration) {
	for _, r := range results {
		m.messages.WithLabelValues(r.Status).Inc()
		if r.Status == Rejected {
			m.rejected.WithLabelValues(string(r.Reason)).Inc()
		}
		if r.Status == Stored {
			m.readings.Add(float64(r.Readings))
			m.flagged.Add(float64(r.Flagged))
			m.refused.Add(float64(r.Refused))
		}
	}
	m.bundle.Observe(took.Seconds())
}
