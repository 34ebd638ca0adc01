package statuspage

import (
	"fmt"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW = 720 // the audit's trend, a full-width card
	barsW  = 480 // the ban charts, two side by side
	chartH = 140
	labelH = 16
)

// BarChart is a bar chart laid out for the template: numbers only, so
// nothing in it can carry markup.
type BarChart struct {
	W, H  int
	Bars  []ChartBar
	Max   int
	Total int
	First string // the first bucket's label
	Last  string
}

// ChartBar is one bar's rectangle and what it counts.
type ChartBar struct {
	X, Y, W, H float64
	Count      int
	Label      string
}

func barChart(bars []Bar, layout string) BarChart {
	c := BarChart{W: barsW, H: chartH + labelH}
	for _, b := range bars {
		c.Max = max(c.Max, b.Count)
		c.Total += b.Count
	}
	n := len(bars)
	if n == 0 {
		return c
	}
	slot := float64(barsW) / float64(n)
	gap := slot * 0.15
	for i, b := range bars {
		h := 0.0
		if c.Max > 0 {
			h = float64(b.Count) / float64(c.Max) * (chartH - 4)
		}
		if b.Count > 0 && h < 1 {
			h = 1
		}
		c.Bars = append(c.Bars, ChartBar{X: round1(float64(i)*slot + gap/2), Y: round1(chartH - h), W: round1(slot - gap), H: round1(h),
			Count: b.Count, Label: b.Start.UTC().Format(layout)})
	}
	c.First, c.Last = c.Bars[0].Label, c.Bars[n-1].Label
	return c
}

func round1(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

// LineChart is the audit score over time, 0 to 100.
type LineChart struct {
	W, H   int
	Points string // x,y pairs for <polyline>
	Dots   []ChartDot
	First  string
	Last   string
}

// ChartDot marks one run.
type ChartDot struct {
	X, Y  float64
	Score int
	Label string
}

func lineChart(points []ScorePoint) LineChart {
	c := LineChart{W: chartW, H: chartH + labelH}
	n := len(points)
	if n == 0 {
		return c
	}
	from, to := points[0].Time, points[n-1].Time
	span := to.Sub(from)
	var sb strings.Builder
	for i, p := range points {
		x := 0.0
		switch {
		case span > 0:
			x = float64(p.Time.Sub(from)) / float64(span) * chartW
		case n > 1:
			x = float64(i) / float64(n-1) * chartW
		}
		y := chartH - float64(min(max(p.Score, 0), 100))/100*(chartH-4) - 2
		x, y = round1(x), round1(y)
		fmt.Fprintf(&sb, "%g,%g ", x, y)
		c.Dots = append(c.Dots, ChartDot{X: x, Y: y, Score: p.Score, Label: p.Time.UTC().Format(time.DateTime)})
	}
	c.Points = strings.TrimSpace(sb.String())
	c.First, c.Last = from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)
	return c
}
