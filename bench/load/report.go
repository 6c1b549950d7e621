package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// modeTitles describe the modes in the table's legend.
var modeTitles = map[string]string{
	"plain": "plain: Easymail with dkim.sign: false vs Postfix as a plain smarthost",
	"sign":  "sign:  Easymail signing (RSA-2048) vs Postfix + OpenDKIM (RSA-2048, milter)",
	"scan":  "scan:  Easymail scanning (clamd + rspamd) and signing vs Postfix + clamav-milter + rspamd milter + OpenDKIM, same clamd and rspamd",
	"tls":   "tls:   one Easymail over STARTTLS to the same MX: MTA-STS enforce (policy cached) and tls_policy verify vs may (opportunistic)",
	"tls1":  "tls1:  the same with one message per connection: a TLS handshake (and under sts/verify a certificate check) per message",
}

// modeOrder is the order of the modes in the table; others follow in name order.
var modeOrder = map[string]int{"plain": 0, "sign": 1, "scan": 2, "tls": 3, "tls1": 4}

func reportCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	markdown := fs.Bool("markdown", false, "print Markdown tables (for docs/benchmarks.md)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: load report [-markdown] RESULTS.jsonl")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := readResults(f)
	if err != nil {
		return err
	}
	return writeReport(stdout, rs, *markdown)
}

// readResults reads JSON lines of Results.
func readResults(r io.Reader) ([]Result, error) {
	var rs []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		rs = append(rs, res)
	}
	return rs, sc.Err()
}

// median of vs (the mean of the two middle values for an even count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// metric is one column of the table, computed from a Result.
type metric struct {
	head string
	get  func(Result) float64
	fmt  string
	// noRatio leaves the column out of the ratio row: Easymail has no milters, and both relays of a mode
	// share the same scanners.
	noRatio bool
}

func cpu(r Result, g string) float64 { return r.Groups[g].CPUMsPerMsg }

func cpuTotal(r Result) float64 {
	var t float64
	for _, g := range r.Groups {
		t += g.CPUMsPerMsg
	}
	return t
}

// relayMB is the peak memory of the relay's own processes: the relay and its milters (the scanners are the
// same instances for both relays of a mode and are shown apart).
func relayMB(r Result, pss bool) float64 {
	var kb int64
	for _, g := range []string{"relay", "milters"} {
		if pss {
			kb += r.Groups[g].PeakPSSKB
		} else {
			kb += r.Groups[g].PeakRSSKB
		}
	}
	return float64(kb) / 1024
}

var metrics = []metric{
	{"accepted/s", func(r Result) float64 { return r.AcceptedPerS }, "%.1f", false},
	{"delivered/s", func(r Result) float64 { return r.DeliveredPerS }, "%.1f", false},
	{"p50 ms", func(r Result) float64 { return r.LatencyP50Ms }, "%.2f", false},
	{"p99 ms", func(r Result) float64 { return r.LatencyP99Ms }, "%.2f", false},
	{"CPU relay", func(r Result) float64 { return cpu(r, "relay") }, "%.2f", false},
	{"milters", func(r Result) float64 { return cpu(r, "milters") }, "%.2f", true},
	{"scanners", func(r Result) float64 { return cpu(r, "scanners") }, "%.2f", false},
	{"total", cpuTotal, "%.2f", false},
	{"RSS MB", func(r Result) float64 { return relayMB(r, false) }, "%.1f", false},
	{"PSS MB", func(r Result) float64 { return relayMB(r, true) }, "%.1f", false},
	{"scanners RSS", func(r Result) float64 { return float64(r.Groups["scanners"].PeakRSSKB) / 1024 }, "%.1f", true},
}

// key identifies the runs whose medians make one row.
type key struct {
	mode  string
	size  int
	relay string
}

// writeReport prints, for each mode and size, the medians of each relay's rounds and the medians of the
// per-round Easymail/anchor ratios.
func writeReport(w io.Writer, rs []Result, markdown bool) error {
	byKey := map[key][]Result{}   // this program's runs
	source := map[key][]float64{} // smtp-source's accepted/s
	side := map[key]string{}      // easymail or anchor
	var keys []key
	for _, r := range rs {
		k := key{r.Mode, r.Size, r.Relay}
		if _, ok := side[k]; !ok {
			keys = append(keys, k)
			side[k] = r.Side
		}
		if r.Tool == "smtp-source" {
			source[k] = append(source[k], r.AcceptedPerS)
			continue
		}
		byKey[k] = append(byKey[k], r)
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.mode != b.mode {
			oa, aok := modeOrder[a.mode]
			ob, bok := modeOrder[b.mode]
			if aok != bok {
				return aok
			}
			if oa != ob {
				return oa < ob
			}
			return a.mode < b.mode
		}
		if a.size != b.size {
			return a.size < b.size
		}
		// Easymail first, then its anchor.
		return side[a] == "easymail" && side[b] != "easymail"
	})
	withSource := len(source) > 0

	head := []string{"mode", "size", "relay", "n"}
	for _, m := range metrics {
		head = append(head, m.head)
	}
	if withSource {
		head = append(head, "smtp-source acc/s")
	}
	var rows [][]string
	var legendModes []string
	seenMode := map[string]bool{}
	for i, k := range keys {
		if !seenMode[k.mode] {
			seenMode[k.mode] = true
			legendModes = append(legendModes, k.mode)
		}
		runs := byKey[k]
		row := []string{k.mode, sizeName(k.size), k.relay, fmt.Sprint(len(runs))}
		for _, m := range metrics {
			var vs []float64
			for _, r := range runs {
				vs = append(vs, m.get(r))
			}
			row = append(row, fmt.Sprintf(m.fmt, median(vs)))
		}
		if withSource {
			row = append(row, dash(source[k], "%.1f"))
		}
		rows = append(rows, row)
		// After the last relay of a (mode, size): the ratio rows.
		last := i == len(keys)-1 || keys[i+1].mode != k.mode || keys[i+1].size != k.size
		if last {
			rows = append(rows, ratioRows(keys, byKey, side, k, withSource)...)
		}
	}

	var b strings.Builder
	b.WriteString("Medians of the rounds; ratio = median over the rounds of Easymail/anchor measured back to back.\n")
	b.WriteString("p50/p99: end of DATA (\".\") to the 250. CPU: ms per message of each process tree (relay: the relay's\n")
	b.WriteString("processes, for Postfix its master and all its children; milters: OpenDKIM, clamav-milter; scanners:\n")
	b.WriteString("clamd, rspamd); RSS/PSS MB: peak of the relay and its milters; scanners RSS: peak of clamd + rspamd.\n")
	for _, m := range legendModes {
		if t, ok := modeTitles[m]; ok {
			b.WriteString(t + "\n")
		}
	}
	if markdown {
		writeMarkdown(&b, head, rows)
	} else {
		writeText(&b, head, rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratioRows returns the rows of Easymail/anchor ratios for k's mode and size, none without both sides. A
// mode with several relays on the Easymail side (tls: each policy against the baseline) has a row for each,
// named "ratio RELAY/ANCHOR".
func ratioRows(keys []key, byKey map[key][]Result, side map[key]string, k key, withSource bool) [][]string {
	var ems []key
	var an *key
	for i := range keys {
		if keys[i].mode == k.mode && keys[i].size == k.size {
			switch side[keys[i]] {
			case "easymail":
				ems = append(ems, keys[i])
			case "anchor":
				an = &keys[i]
			}
		}
	}
	if an == nil {
		return nil
	}
	var rows [][]string
	for _, em := range ems {
		label := "ratio EM/anchor"
		if len(ems) > 1 {
			label = "ratio " + em.relay + "/" + an.relay
		}
		rows = append(rows, ratioRow(byKey[em], byKey[*an], k, label, withSource))
	}
	return rows
}

// ratioRow returns the row of the per-round ratios em/an, labelled label.
func ratioRow(ems, ans []Result, k key, label string, withSource bool) []string {
	byRound := func(rs []Result) map[int]Result {
		m := map[int]Result{}
		for _, r := range rs {
			m[r.Round] = r
		}
		return m
	}
	e, a := byRound(ems), byRound(ans)
	var common []int
	for r := range e {
		if _, ok := a[r]; ok {
			common = append(common, r)
		}
	}
	sort.Ints(common)
	row := []string{k.mode, sizeName(k.size), label, fmt.Sprint(len(common))}
	for _, m := range metrics {
		if m.noRatio {
			row = append(row, "")
			continue
		}
		var vs []float64
		for _, r := range common {
			if d := m.get(a[r]); d > 0 {
				vs = append(vs, m.get(e[r])/d)
			}
		}
		row = append(row, dash(vs, "%.2f"))
	}
	if withSource {
		row = append(row, "")
	}
	return row
}

// dash formats the median of vs, or "-" when there is none.
func dash(vs []float64, format string) string {
	if len(vs) == 0 {
		return "-"
	}
	return fmt.Sprintf(format, median(vs))
}

// sizeName prints a body size as smtp-source's users think of it: 1 KB, 5 KB, 100 KB.
func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func writeText(b *strings.Builder, head []string, rows [][]string) {
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			if i < 3 {
				fmt.Fprintf(b, "%-*s", width[i], c)
			} else {
				fmt.Fprintf(b, "%*s", width[i], c)
			}
		}
		b.WriteString("\n")
	}
	line(head)
	for _, r := range rows {
		line(r)
	}
}

func writeMarkdown(b *strings.Builder, head []string, rows [][]string) {
	b.WriteString("\n| " + strings.Join(head, " | ") + " |\n|")
	for i := range head {
		if i < 3 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}
