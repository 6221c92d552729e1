package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// writeCounts are kube-apiserver's counts of write requests, by "VERB resource[/subresource]".
type writeCounts map[string]float64

// isWrite reports apiserver_request_total's verbs that change something: POST is create, PUT
// update, APPLY a server-side apply patch.
func isWrite(verb string) bool {
	switch verb {
	case "POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION":
		return true
	}
	return false
}

// apiServerCounts is what kube-apiserver's /metrics says at one moment.
type apiServerCounts struct {
	writes writeCounts
	// cpu is the API server process's CPU time (process_cpu_seconds_total).
	cpu float64
}

// scrapeAPIServer reads kube-apiserver's /metrics as the admin: its CPU time, and the write
// requests it served. Dry runs write nothing and leases are the API server's own heartbeats
// (leader election is off in the daemon), so neither counts as a write.
func scrapeAPIServer(ctx context.Context, cfg *rest.Config) (apiServerCounts, error) {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return apiServerCounts{}, err
	}
	families, err := scrape(ctx, c, strings.TrimSuffix(cfg.Host, "/")+"/metrics")
	if err != nil {
		return apiServerCounts{}, fmt.Errorf("kube-apiserver: %w", err)
	}
	family, cpu := families["apiserver_request_total"], families["process_cpu_seconds_total"]
	if family == nil || cpu == nil || len(cpu.GetMetric()) != 1 {
		return apiServerCounts{}, fmt.Errorf("kube-apiserver metrics lack apiserver_request_total or process_cpu_seconds_total")
	}
	counts := apiServerCounts{writes: writeCounts{}, cpu: cpu.GetMetric()[0].GetCounter().GetValue()}
	for _, m := range family.GetMetric() {
		labels := labelsOf(m)
		verb := strings.ToUpper(labels["verb"])
		if !isWrite(verb) || labels["dry_run"] != "" || labels["resource"] == "leases" {
			continue
		}
		key := verb + " " + labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			key += "/" + sub
		}
		counts.writes[key] += m.GetCounter().GetValue()
	}
	return counts, nil
}

// scrapeClientRequests reads the daemon's /metrics and counts its API requests by method
// (client-go's rest_client_requests_total, which controller-runtime exports).
func scrapeClientRequests(ctx context.Context, addr string) (map[string]int64, error) {
	families, err := scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("kudod: %w", err)
	}
	family := families["rest_client_requests_total"]
	if family == nil {
		return nil, fmt.Errorf("kudod's metrics have no rest_client_requests_total")
	}
	counts := map[string]int64{}
	for _, m := range family.GetMetric() {
		counts[labelsOf(m)["method"]] += int64(m.GetCounter().GetValue())
	}
	return counts, nil
}

// scrapeSum reads a metric from the daemon's /metrics: a gauge's or counter's value, a
// histogram's count, summed over its series; an error when it has none yet.
func scrapeSum(ctx context.Context, addr, name string) (float64, error) {
	families, err := scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		return 0, fmt.Errorf("kudod: %w", err)
	}
	f := families[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return 0, fmt.Errorf("kudod's metrics have no %s", name)
	}
	var sum float64
	for _, m := range f.GetMetric() {
		switch {
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, nil
}

// scrape reads Prometheus metrics in the text format.
func scrape(ctx context.Context, c *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse the metrics of %s: %w", url, err)
	}
	return families, nil
}

func labelsOf(m *dto.Metric) map[string]string {
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return labels
}

// since returns the writes made after an earlier count, leaving out what did not change.
func (w writeCounts) since(before writeCounts) writeCounts {
	d := writeCounts{}
	for k, v := range w {
		if n := v - before[k]; n > 0 {
			d[k] = n
		}
	}
	return d
}

func (w writeCounts) total() int64 {
	var n float64
	for _, v := range w {
		n += v
	}
	return int64(n)
}

// ints is the counts as whole numbers, for the JSON report.
func (w writeCounts) ints() map[string]int64 {
	out := make(map[string]int64, len(w))
	for k, v := range w {
		out[k] = int64(v)
	}
	return out
}

func (w writeCounts) String() string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, int64(w[k]))
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// profileAPIServer writes a CPU profile of kube-apiserver over the next window to path.
func profileAPIServer(ctx context.Context, cfg *rest.Config, window time.Duration, path string) error {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	c.Timeout = window + time.Minute
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(cfg.Host, "/"), int(window.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("profile kube-apiserver: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile kube-apiserver: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
