package portal

import (
	"fmt"
	"html/template"
	"strings"
)

// series is one line of a chart; class names its colour in portal.css.
type series struct {
	Name   string
	Class  string
	Values []int64
}

// chart draws series over labels as an SVG line chart, server-side: no script, nothing fetched. Colours come
// from the stylesheet (classes), so that the CSP needs no inline style.
func chart(title string, labels []string, ss []series) template.HTML {
	const w, h, left, bottom, top = 640, 220, 48, 24, 10
	var max int64 = 1
	for _, s := range ss {
		for _, v := range s.Values {
			max = maxInt(max, v)
		}
	}
	n := len(labels)
	x := func(i int) float64 {
		if n <= 1 {
			return left
		}
		return left + float64(i)*float64(w-left-8)/float64(n-1)
	}
	y := func(v int64) float64 { return top + float64(h-top-bottom)*(1-float64(v)/float64(max)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	for _, g := range []int64{0, max / 2, max} {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="axis" x="%d" y="%.1f" text-anchor="end">%d</text>`,
			left, w-8, y(g), y(g), left-4, y(g)+4, g)
	}
	step := maxInt(1, int64(n/8))
	for i, l := range labels {
		if int64(i)%step == 0 {
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x(i), h-6, template.HTMLEscapeString(l))
		}
	}
	for _, s := range ss {
		pts := make([]string, len(s.Values))
		for i, v := range s.Values {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(i), y(v))
		}
		fmt.Fprintf(&b, `<polyline class="line %s" points="%s"><title>%s</title></polyline>`, s.Class, strings.Join(pts, " "),
			template.HTMLEscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text in it is escaped above
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
