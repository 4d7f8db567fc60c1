package console

import (
	"fmt"
	"strconv"
)

// chart is a bar chart drawn on the server as SVG: the template writes the
// rectangles and labels this computes, so the page needs no script.
type chart struct {
	Title  string // catalog key
	Width  int
	Height int
	Bars   []bar
	Max    int
	Empty  bool // no bar above zero
	// Ticks label the value axis.
	Ticks []tick
}

type bar struct {
	X, Y, W, H float64
	Label      string // under the bar (may be empty to thin the axis)
	Value      int
	LabelX     float64
}

type tick struct {
	Y     float64
	Label string
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 640, 200
	padLeft        = 36
	padBottom      = 40
	padTop         = 10
)

type point struct {
	label string
	value int
}

// newChart lays out bars for points; every labelEvery-th label is shown.
func newChart(title string, pts []point, labelEvery int) chart {
	c := chart{Title: title, Width: chartW, Height: chartH, Empty: true}
	for _, p := range pts {
		c.Max = max(c.Max, p.value)
		if p.value > 0 {
			c.Empty = false
		}
	}
	top := max(c.Max, 1)
	plotH := float64(chartH - padBottom - padTop)
	slot := float64(chartW-padLeft) / float64(max(len(pts), 1))
	for i, p := range pts {
		h := plotH * float64(p.value) / float64(top)
		b := bar{X: padLeft + float64(i)*slot + slot*0.15, W: slot * 0.7, H: h, Y: padTop + plotH - h, Value: p.value}
		b.LabelX = b.X + b.W/2
		if labelEvery <= 1 || i%labelEvery == 0 {
			b.Label = p.label
		}
		c.Bars = append(c.Bars, b)
	}
	for _, v := range []int{0, top / 2, top} {
		c.Ticks = append(c.Ticks, tick{Y: padTop + plotH - plotH*float64(v)/float64(top), Label: strconv.Itoa(v)})
	}
	return c
}

// f formats an SVG coordinate.
func f(v float64) string { return fmt.Sprintf("%.1f", v) }
