// Package report turns hearth-bench's JSON result lines from several rounds and servers
// into the comparison table of docs/performance.md: per metric, the median over rounds
// for each server and each peer's ratio to hearth. It rewrites only the generated block
// between "<!-- compare:begin -->" and "<!-- compare:end -->".
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hearth-im/hearth/bench/stats"
)

// Markers delimit the generated block in the document.
const (
	Begin   = "<!-- compare:begin -->"
	End     = "<!-- compare:end -->"
	Heading = "## Comparison with Prosody and ejabberd (bench/compare.sh)"
)

// Line is the part of a result line the report reads.
type Line struct {
	Scenario string             `json:"scenario"`
	Server   string             `json:"server"`
	Round    int                `json:"round"`
	OK       bool               `json:"ok"`
	Error    string             `json:"error"`
	Auth     string             `json:"auth"`
	Params   map[string]any     `json:"params"`
	Metrics  map[string]float64 `json:"metrics"`
	Notes    []string           `json:"notes"`
}

// Row is one metric of the table.
type Row struct {
	Scenario, Metric, Label string
	HigherBetter            bool
}

// Rows lists what the table shows, in order.
var Rows = []Row{
	{"login", "achieved_rate", "login: logins/s achieved (target rate in settings)", true},
	{"login", "login_p50_ms", "login: p50 login time, ms (TCP+STARTTLS+SCRAM+bind)", false},
	{"login", "login_p99_ms", "login: p99 login time, ms", false},
	{"login", "server_cpu_ms_per_login", "login: server CPU per login, ms", false},
	{"idle", "server_kib_per_session", "idle: server memory per idle session, KiB (VmRSS delta)", false},
	{"idle", "login_rate", "idle: logins/s at full speed", true},
	{"chat", "delivered_per_s", "chat: messages delivered/s", true},
	{"chat", "latency_p50_ms", "chat: p50 latency, ms", false},
	{"chat", "latency_p99_ms", "chat: p99 latency, ms", false},
	{"chat", "server_cpu_us_per_msg", "chat: server CPU per message, µs", false},
	{"chat", "client_cpu_us_per_msg", "chat: load client's own CPU per message, µs (for scale)", false},
	{"fanout", "initial_all_ms", "fanout: initial presence, all K contacts have it, ms", false},
	{"fanout", "probe_all_ms", "fanout: initial presence, all K contacts' presence back, ms", false},
	{"fanout", "broadcast_all_p50_ms", "fanout: presence change, all K have it (median of changes), ms", false},
	{"fanout", "presence_p99_ms", "fanout: presence change, p99 per contact, ms", false},
	{"fanout", "server_cpu_us_per_presence", "fanout: server CPU per presence delivered, µs", false},
	{"muc", "delivered_per_s", "muc: groupchat deliveries/s", true},
	{"muc", "latency_p50_ms", "muc: p50 delivery latency, ms", false},
	{"muc", "latency_p99_ms", "muc: p99 delivery latency, ms", false},
	{"muc", "server_cpu_us_per_delivery", "muc: server CPU per delivery, µs", false},
	{"muc", "client_cpu_us_per_delivery", "muc: load client's own CPU per delivery, µs (for scale)", false},
	{"muc", "storm_all_ms", "muc: join storm, all occupants have the full list, ms", false},
}

// Read parses result lines; blank lines and lines that are not results are skipped.
func Read(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] != '{' {
			continue
		}
		var l Line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.Scenario != "" && l.Server != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// Meta describes the run for the report's header.
type Meta struct {
	Date     string            `json:"date"`
	Machine  map[string]any    `json:"machine"`
	Versions map[string]string `json:"versions"`
	Settings map[string]string `json:"settings"`
	Command  string            `json:"command"`
	Caveats  []string          `json:"caveats"`
}

// Render builds the generated block (without markers).
func Render(lines []Line, meta Meta, reference string) string {
	servers := serverOrder(lines, reference)
	var b strings.Builder
	if meta.Date != "" {
		fmt.Fprintf(&b, "Generated %s by `%s`.\n\n", meta.Date, orDefault(meta.Command, "bench/compare.sh"))
	}
	if len(meta.Machine) > 0 {
		keys := sortedKeys(meta.Machine)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %v", k, meta.Machine[k]))
		}
		fmt.Fprintf(&b, "Machine: %s.\n\n", strings.Join(parts, ", "))
	}
	if len(meta.Versions) > 0 {
		var parts []string
		for _, k := range sortedKeys(meta.Versions) {
			parts = append(parts, k+" "+meta.Versions[k])
		}
		fmt.Fprintf(&b, "Versions: %s.\n\n", strings.Join(parts, "; "))
	}
	if len(meta.Settings) > 0 {
		var parts []string
		for _, k := range sortedKeys(meta.Settings) {
			parts = append(parts, k+"="+meta.Settings[k])
		}
		fmt.Fprintf(&b, "Settings: `%s`.\n\n", strings.Join(parts, " "))
	}
	auth := map[string]bool{}
	rounds := map[int]bool{}
	for _, l := range lines {
		if l.Auth != "" {
			auth[l.Server+": "+l.Auth] = true
		}
		rounds[l.Round] = true
	}
	if len(auth) > 0 {
		fmt.Fprintf(&b, "Authentication: %s.\n\n", strings.Join(sortedSet(auth), "; "))
	}
	fmt.Fprintf(&b, "Medians over %d round(s), with the lowest and highest round in parentheses; each round "+
		"runs every scenario against every server, in rotated order. Ratios are of the medians, peer ÷ %s: "+
		"above 1 means the peer's figure is larger (better where higher is better, worse where lower "+
		"is better).\n\n", len(rounds), reference)

	// Table.
	b.WriteString("| metric | better |")
	for _, s := range servers {
		b.WriteString(" " + s + " |")
	}
	hasRef := slices.Contains(servers, reference)
	if hasRef {
		for _, s := range servers {
			if s != reference {
				fmt.Fprintf(&b, " %s ÷ %s |", s, reference)
			}
		}
	}
	b.WriteString("\n|---|---|")
	for range servers {
		b.WriteString("---:|")
	}
	if hasRef {
		for range len(servers) - 1 {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, row := range Rows {
		vals := map[string]float64{}
		spread := map[string]string{}
		any := false
		for _, s := range servers {
			xs := values(lines, s, row.Scenario, row.Metric)
			if len(xs) > 0 {
				vals[s] = stats.Median(xs)
				if lo, hi := slices.Min(xs), slices.Max(xs); len(xs) > 1 && lo != hi {
					spread[s] = " (" + format(lo) + "–" + format(hi) + ")"
				}
				any = true
			}
		}
		if !any {
			continue
		}
		better := "lower"
		if row.HigherBetter {
			better = "higher"
		}
		fmt.Fprintf(&b, "| %s | %s |", row.Label, better)
		for _, s := range servers {
			if v, ok := vals[s]; ok {
				b.WriteString(" " + format(v) + spread[s] + " |")
			} else {
				b.WriteString(" — |")
			}
		}
		if hasRef {
			ref, refOK := vals[reference]
			for _, s := range servers {
				if s == reference {
					continue
				}
				v, ok := vals[s]
				if ok && refOK && ref != 0 {
					b.WriteString(" " + strconv.FormatFloat(v/ref, 'f', 2, 64) + " |")
				} else {
					b.WriteString(" — |")
				}
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")

	// Runs that failed or never ran.
	var problems []string
	scenarios := scenarioOrder(lines)
	for _, s := range servers {
		for _, sc := range scenarios {
			var total, ok int
			var errs []string
			for _, l := range lines {
				if l.Server == s && l.Scenario == sc {
					total++
					if l.OK {
						ok++
					} else if l.Error != "" && !slices.Contains(errs, l.Error) {
						errs = append(errs, l.Error)
					}
				}
			}
			switch {
			case total == 0:
				problems = append(problems, fmt.Sprintf("- %s, %s: not run", s, sc))
			case ok < total:
				problems = append(problems, fmt.Sprintf("- %s, %s: %d of %d rounds failed: %s", s, sc, total-ok, total, strings.Join(errs, "; ")))
			}
		}
	}
	for _, l := range lines {
		if !l.OK && !slices.Contains(scenarios, l.Scenario) {
			problems = append(problems, fmt.Sprintf("- %s, %s (round %d): %s", l.Server, l.Scenario, l.Round, l.Error))
		}
	}
	if len(problems) > 0 {
		b.WriteString("Failed or missing runs (their partial figures are still in the medians where present):\n\n")
		b.WriteString(strings.Join(problems, "\n"))
		b.WriteString("\n\n")
	}
	if len(meta.Caveats) > 0 {
		b.WriteString("Caveats:\n\n")
		for _, c := range meta.Caveats {
			b.WriteString("- " + c + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Update replaces the generated block of the document at path (creating the file, the
// section or the markers if missing) and writes it back.
func Update(path, block string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	gen := Begin + "\n" + block + End
	i, j := strings.Index(doc, Begin), strings.Index(doc, End)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + gen + doc[j+len(End):]
	case doc == "":
		doc = "# Performance\n\n" + Heading + "\n\n" + gen + "\n"
	default:
		if !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		doc += "\n" + Heading + "\n\n" + gen + "\n"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Main is `hearth-bench report`.
func Main(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth-bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	results := fs.String("results", "", "result lines (JSONL), comma-separated files")
	doc := fs.String("doc", "", "document to update between the compare markers (default: print the block)")
	metaPath := fs.String("meta", "", "JSON file describing the run (date, machine, versions, settings, caveats)")
	reference := fs.String("reference", "hearth", "server the ratios are relative to")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *results == "" {
		return errors.New("report: --results is required")
	}
	var lines []Line
	for _, f := range strings.Split(*results, ",") {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		ls, err := Read(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("report: %s: %w", f, err)
		}
		lines = append(lines, ls...)
	}
	var meta Meta
	if *metaPath != "" {
		b, err := os.ReadFile(*metaPath)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return fmt.Errorf("report: %s: %w", *metaPath, err)
		}
	}
	block := Render(lines, meta, *reference)
	if *doc == "" {
		_, err := io.WriteString(stdout, block)
		return err
	}
	return Update(*doc, block)
}

// values returns a metric's figures over the rounds of one server and scenario.
func values(lines []Line, server, scenario, metric string) []float64 {
	var xs []float64
	for _, l := range lines {
		if l.Server != server || l.Scenario != scenario {
			continue
		}
		if v, ok := l.Metrics[metric]; ok && !math.IsNaN(v) {
			xs = append(xs, v)
		}
	}
	return xs
}

func serverOrder(lines []Line, reference string) []string {
	var out []string
	for _, l := range lines {
		if !slices.Contains(out, l.Server) {
			out = append(out, l.Server)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i] == reference && out[j] != reference })
	return out
}

// scenarioOrder lists the scenarios that some server ran, in table order.
func scenarioOrder(lines []Line) []string {
	ran := map[string]bool{}
	for _, l := range lines {
		ran[l.Scenario] = true
	}
	var out []string
	for _, r := range Rows {
		if ran[r.Scenario] && !slices.Contains(out, r.Scenario) {
			out = append(out, r.Scenario)
		}
	}
	return out
}

// format prints a figure with three significant digits at most (or a whole number).
func format(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortedSet(m map[string]bool) []string { return sortedKeys(m) }
