// Package middleware holds the HTTP middleware shared by all APIs: request
// IDs, access logging, Prometheus metrics and panic recovery.
package middleware

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"keppel/internal/errcode"
)

// Metrics are the registry's Prometheus metrics.
type Metrics struct {
	RequestDuration *prometheus.HistogramVec
	// Pushed and pulled content, by kind ("blob" or "manifest").
	Pushed      *prometheus.CounterVec
	Pulled      *prometheus.CounterVec
	PushedBytes prometheus.Counter
	PulledBytes prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keppel_http_request_duration_seconds",
			Help:    "Duration of HTTP requests until the response is complete, by API route and status.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "status"}),
		Pushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_pushed_total",
			Help: "Number of blobs and manifests pushed, by kind.",
		}, []string{"kind"}),
		Pulled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keppel_pulled_total",
			Help: "Number of blobs and manifests pulled (GET), by kind.",
		}, []string{"kind"}),
		PushedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keppel_pushed_blob_bytes_total",
			Help: "Bytes of blob content pushed.",
		}),
		PulledBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keppel_pulled_blob_bytes_total",
			Help: "Bytes of blob content sent to clients.",
		}),
	}
	reg.MustRegister(m.RequestDuration, m.Pushed, m.Pulled, m.PushedBytes, m.PulledBytes)
	for _, kind := range []string{"blob", "manifest"} {
		m.Pushed.WithLabelValues(kind)
		m.Pulled.WithLabelValues(kind)
	}
	return m
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (and
// io.Copy use sendfile through ReadFrom).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ReadFrom keeps the zero-copy path (sendfile) of the underlying writer.
func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := io.Copy(s.ResponseWriter, r)
	s.bytes += n
	return n, err
}

// Wrap adds request IDs, access logs, metrics and panic recovery around h.
// routeName classifies a request for the metrics label (bounded cardinality).
func Wrap(h http.Handler, log *slog.Logger, m *Metrics, routeName func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if reqID == "" || len(reqID) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			reqID = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", reqID)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic while serving request", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "panic", p)
				if rec.status == 0 {
					errcode.Write(rec, &errcode.Error{Code: errcode.Unknown})
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.RequestDuration.WithLabelValues(routeName(r), r.Method, strconv.Itoa(status)).Observe(elapsed.Seconds())
			log.Debug("request", "request_id", reqID, "method", r.Method, "path", r.URL.Path,
				"status", status, "bytes", rec.bytes, "duration_ms", elapsed.Milliseconds(), "remote", r.RemoteAddr)
		}()
		h.ServeHTTP(rec, r)
	})
}
