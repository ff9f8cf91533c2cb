package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/petrel-dev/petrel/internal/backend"
)

var pageNames = []string{"jobs", "job", "compare", "services", "service", "volumes"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"age":   age,
		"dur":   human,
		"clock": func(t *time.Time) string { return clock(t) },
		"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"lower": func(v any) string { return strings.ToLower(fmt.Sprint(v)) }, // phases are typed strings
		"join":  strings.Join,
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// page is what every page's layout needs.
type page struct {
	Title  string
	Target string
	Nav    string
	Data   any
}

func (s *Server) render(w http.ResponseWriter, name, title string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", page{Title: title, Target: s.opts.Target, Nav: name, Data: data}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = buf.WriteTo(w)
}

// fragment renders one named block of a page, for the page's script to
// put in place (live tables and status blocks).
func (s *Server) fragment(w http.ResponseWriter, page, block string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, block, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

func age(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return human(time.Since(t))
}

// human formats d as kubectl's AGE column does: 45s, 3m12s, 5h2m, 3d4h.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func clock(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("15:04:05")
}

// jobRow is one line of the jobs list.
type jobRow struct {
	Name, Phase, Waiting string
	Attempts, GPUs       int
	Duration, Age        string
	Metrics              string
}

func newJobRow(j *backend.Job, now time.Time) jobRow {
	r := jobRow{Name: j.Name, Phase: string(j.Phase), Waiting: j.Waiting.String(), Attempts: len(j.Attempts), Age: human(now.Sub(j.CreationTime))}
	r.GPUs = int(j.Spec.Resources.GPU)
	if j.StartTime != nil {
		end := now
		if j.CompletionTime != nil {
			end = *j.CompletionTime
		}
		r.Duration = human(end.Sub(*j.StartTime))
	}
	names := make([]string, 0, len(j.LastMetrics))
	for k := range j.LastMetrics {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, j.LastMetrics[k]))
	}
	r.Metrics = strings.Join(parts, " ")
	return r
}

// jobsView is the jobs list, newest first.
type jobsView struct {
	Jobs []jobRow
	// Fragment renders only the table's rows (the page refreshes them).
	Fragment bool
}

func (s *Server) listJobRows(r *http.Request) (jobsView, error) {
	jobs, err := s.src.ListJobs(r.Context())
	if err != nil {
		return jobsView{}, err
	}
	now := time.Now()
	v := jobsView{Jobs: make([]jobRow, 0, len(jobs))}
	for i := len(jobs) - 1; i >= 0; i-- {
		v.Jobs = append(v.Jobs, newJobRow(&jobs[i], now))
	}
	return v, nil
}

func (s *Server) jobsPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.listJobRows(r)
	if err != nil {
		fail(w, err)
		return
	}
	if r.URL.Query().Get("fragment") == "rows" {
		s.fragment(w, "jobs", "rows", v)
		return
	}
	s.render(w, "jobs", "Jobs", v)
}

// attemptRow is one attempt in the timeline: Left and Width place its bar
// in percent of the job's span.
type attemptRow struct {
	backend.Attempt
	Duration    string
	Left, Width float64
	Exit        string
}

// maxOthers caps the runs a job page offers to compare with; the jobs list
// can pick any.
const maxOthers = 20

type jobView struct {
	Job      *backend.Job
	Row      jobRow
	Attempts []attemptRow
	Span     string
	Findings []backend.Finding
	// DiagnoseErr says why there is no diagnosis.
	DiagnoseErr string
	// Others are the most recent other jobs with metrics (at most
	// maxOthers), to compare curves with.
	Others []string
}

func (s *Server) jobPage(w http.ResponseWriter, r *http.Request) {
	j, err := s.src.GetJob(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	now := time.Now()
	v := jobView{Job: j, Row: newJobRow(j, now)}
	v.Attempts, v.Span = timeline(j.Attempts, now)
	if r.URL.Query().Get("fragment") == "status" {
		// The page refreshes its status block with this until the job ends.
		if j.Finished() {
			w.Header().Set("X-Petrel-Final", "true")
		}
		s.fragment(w, "job", "status", v)
		return
	}
	if fs, err := s.src.Diagnose(r.Context(), backend.Ref{Kind: "job", Name: j.Name}); err != nil {
		v.DiagnoseErr = err.Error()
	} else {
		v.Findings = fs
	}
	if jobs, err := s.src.ListJobs(r.Context()); err == nil {
		for i := len(jobs) - 1; i >= 0 && len(v.Others) < maxOthers; i-- {
			if jobs[i].Name != j.Name && len(jobs[i].LastMetrics) > 0 {
				v.Others = append(v.Others, jobs[i].Name)
			}
		}
	}
	s.render(w, "job", "Job "+j.Name, v)
}

// timeline places each attempt between the first start and the last end
// (or now, for a running attempt).
func timeline(as []backend.Attempt, now time.Time) ([]attemptRow, string) {
	var first, last time.Time
	for _, a := range as {
		if a.StartTime != nil && (first.IsZero() || a.StartTime.Before(first)) {
			first = *a.StartTime
		}
		end := now
		if a.EndTime != nil {
			end = *a.EndTime
		} else if a.StartTime == nil {
			continue
		}
		if end.After(last) {
			last = end
		}
	}
	span := last.Sub(first)
	rows := make([]attemptRow, 0, len(as))
	for _, a := range as {
		row := attemptRow{Attempt: a}
		if a.ExitCode != nil {
			row.Exit = fmt.Sprint(*a.ExitCode)
		}
		if a.StartTime != nil {
			end := now
			if a.EndTime != nil {
				end = *a.EndTime
			}
			row.Duration = human(end.Sub(*a.StartTime))
			if span > 0 {
				row.Left = 100 * float64(a.StartTime.Sub(first)) / float64(span)
				row.Width = max(0.5, 100*float64(end.Sub(*a.StartTime))/float64(span))
			} else {
				row.Width = 100
			}
		}
		rows = append(rows, row)
	}
	return rows, human(span)
}

func (s *Server) jobSeries(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	j, err := s.src.GetJob(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	pts, err := s.src.Metrics(r.Context(), name)
	if err != nil {
		fail(w, err)
		return
	}
	x := pickXName(pts)
	writeJSON(w, chartData{XName: x, Series: buildSeries("", pts, x, len(j.Attempts) > 1), Running: !j.Finished()})
}

type compareView struct {
	Jobs []string
	// Src is the chart data's URL.
	Src string
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["job"]
	s.render(w, "compare", "Compare "+strings.Join(names, ", "), compareView{Jobs: names, Src: "/api/compare?" + url.Values{"job": names}.Encode()})
}

// compareSeries overlays the metrics of several jobs: each job's last
// attempt that reported metrics is one line per chart.
func (s *Server) compareSeries(w http.ResponseWriter, r *http.Request) {
	names := r.URL.Query()["job"]
	var all []backend.MetricPoint
	per := map[string][]backend.MetricPoint{}
	out := chartData{Series: []chartSeries{}}
	for _, n := range names {
		j, err := s.src.GetJob(r.Context(), n)
		if err != nil {
			fail(w, err)
			return
		}
		out.Running = out.Running || !j.Finished()
		pts, err := s.src.Metrics(r.Context(), n)
		if err != nil {
			fail(w, err)
			return
		}
		if len(pts) > 0 {
			lastAttempt := pts[len(pts)-1].Attempt
			pts = slices.DeleteFunc(pts, func(p backend.MetricPoint) bool { return p.Attempt != lastAttempt })
		}
		per[n] = pts
		all = append(all, pts...)
	}
	out.XName = pickXName(all)
	for _, n := range names {
		out.Series = append(out.Series, buildSeries(n, per[n], out.XName, false)...)
	}
	writeJSON(w, out)
}

type serviceRow struct {
	Name, URL, Metric       string
	Desired, Ready, Running int32
	Restarts                int32
	Age                     string
}

func newServiceRow(s *backend.Service, now time.Time) serviceRow {
	r := serviceRow{Name: s.Name, URL: s.URL, Metric: s.Metric, Desired: s.DesiredReplicas, Ready: s.ReadyReplicas, Age: human(now.Sub(s.CreationTime))}
	for _, rep := range s.Replicas {
		r.Restarts += rep.Restarts
		if rep.Phase == "Running" {
			r.Running++
		}
	}
	return r
}

func (s *Server) servicesPage(w http.ResponseWriter, r *http.Request) {
	svcs, err := s.src.ListServices(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	now := time.Now()
	rows := make([]serviceRow, 0, len(svcs))
	for i := range svcs {
		rows = append(rows, newServiceRow(&svcs[i], now))
	}
	if r.URL.Query().Get("fragment") == "rows" {
		s.fragment(w, "services", "rows", rows)
		return
	}
	s.render(w, "services", "Services", rows)
}

type serviceView struct {
	Service  *backend.Service
	Row      serviceRow
	Events   []backend.Event
	Findings []backend.Finding
}

func (s *Server) servicePage(w http.ResponseWriter, r *http.Request) {
	svc, err := s.src.GetService(r.Context(), r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	v := serviceView{Service: svc, Row: newServiceRow(svc, time.Now())}
	for i := len(svc.Events) - 1; i >= 0 && len(v.Events) < 30; i-- {
		v.Events = append(v.Events, svc.Events[i])
	}
	if r.URL.Query().Get("fragment") == "status" {
		s.fragment(w, "service", "status", v)
		return
	}
	if fs, err := s.src.Diagnose(r.Context(), backend.Ref{Kind: "service", Name: svc.Name}); err == nil {
		v.Findings = fs
	}
	s.render(w, "service", "Service "+svc.Name, v)
}

type volumeRow struct {
	backend.VolumeStatus
	Size, Age string
	MountedBy []string
}

func (s *Server) volumesPage(w http.ResponseWriter, r *http.Request) {
	vs, err := s.src.ListVolumes(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	users := map[string][]string{}
	if jobs, err := s.src.ListJobs(r.Context()); err == nil {
		for _, j := range jobs {
			for _, m := range j.Spec.Volumes {
				users[m.Name] = append(users[m.Name], "job/"+j.Name)
			}
		}
	}
	if svcs, err := s.src.ListServices(r.Context()); err == nil {
		for _, sv := range svcs {
			for _, m := range sv.Spec.Volumes {
				users[m.Name] = append(users[m.Name], "service/"+sv.Name)
			}
		}
	}
	now := time.Now()
	rows := make([]volumeRow, 0, len(vs))
	for _, v := range vs {
		row := volumeRow{VolumeStatus: v, MountedBy: users[v.Name], Age: human(now.Sub(v.CreationTime))}
		if v.Spec.Size != nil {
			row.Size = v.Spec.Size.String()
		}
		rows = append(rows, row)
	}
	s.render(w, "volumes", "Volumes", rows)
}
