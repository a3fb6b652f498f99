package promql

// The graph is drawn here with the standard image and image/png packages
// and golang.org/x/image's fixed 7x13 bitmap font, rather than with
// gonum.org/v1/plot: plot would add PDF, SVG and LaTeX back ends and a few
// megabytes of embedded TrueType fonts to a service binary for what is one
// line chart with a grid, time labels and a legend. What an on-call engineer
// needs from it is the shape of the series; the exact numbers are in the
// table next to it.

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// GraphOptions shape Graph.
type GraphOptions struct {
	Title string
	// Start and End are the time axis; zero takes the data's extent.
	Start, End time.Time
	// Width and Height in pixels; zero is 800×320.
	Width, Height int
	// MaxSeries bounds the lines drawn (the first ones by label order).
	MaxSeries int
}

// palette is the line colors, distinguishable for most color vision.
var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

var (
	white    = color.RGBA{255, 255, 255, 255}
	black    = color.RGBA{40, 40, 40, 255}
	gridGray = color.RGBA{225, 225, 225, 255}
	axisGray = color.RGBA{150, 150, 150, 255}
)

const (
	charW   = 7  // basicfont.Face7x13 advance
	lineH   = 15 // text line height
	padLeft = 8
)

// Graph draws the series of a range query as a PNG line chart.
func Graph(m model.Matrix, o GraphOptions) ([]byte, error) {
	if o.Width == 0 {
		o.Width = 800
	}
	if o.Height == 0 {
		o.Height = 320
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = len(palette)
	}
	series := slices.Clone(m)
	slices.SortStableFunc(series, func(a, b *model.SampleStream) int { return strings.Compare(a.Metric.String(), b.Metric.String()) })
	if len(series) > o.MaxSeries {
		series = series[:o.MaxSeries]
	}

	// Extent of the data.
	lo, hi := math.Inf(1), math.Inf(-1)
	var tmin, tmax model.Time
	first := true
	for _, s := range series {
		for _, p := range s.Values {
			v := float64(p.Value)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			if first || p.Timestamp < tmin {
				tmin = p.Timestamp
			}
			if first || p.Timestamp > tmax {
				tmax = p.Timestamp
			}
			first = false
		}
	}
	if first {
		return nil, errors.New("no finite values to draw")
	}
	start, end := o.Start, o.End
	if start.IsZero() || end.IsZero() || !end.After(start) {
		start, end = tmin.Time(), tmax.Time()
	}
	if !end.After(start) {
		end = start.Add(time.Minute)
	}
	ticks, lo, hi := niceTicks(lo, hi, 5)

	// Layout: title on top, y labels on the left, time labels and the
	// legend below.
	yLabelW := 0
	for _, t := range ticks {
		yLabelW = max(yLabelW, len(axisLabel(t))*charW)
	}
	legendCols := max(1, (o.Width-2*padLeft)/260)
	legendRows := (len(series) + legendCols - 1) / legendCols
	plot := image.Rect(padLeft+yLabelW+6, lineH+10, o.Width-16, o.Height-lineH-8-legendRows*lineH-6)
	if plot.Dx() < 50 || plot.Dy() < 40 {
		return nil, fmt.Errorf("graph of %dx%d pixels is too small for %d series", o.Width, o.Height, len(series))
	}

	img := image.NewRGBA(image.Rect(0, 0, o.Width, o.Height))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)

	const utc = "time in UTC"
	text(img, padLeft, lineH, truncateRunes(o.Title, (o.Width-2*padLeft)/charW-len(utc)-2), black)
	text(img, o.Width-padLeft-len(utc)*charW, lineH, utc, axisGray)

	ypos := func(v float64) int {
		return plot.Max.Y - int(math.Round((v-lo)/(hi-lo)*float64(plot.Dy())))
	}
	span := end.Sub(start)
	xpos := func(t time.Time) int {
		return plot.Min.X + int(math.Round(float64(t.Sub(start))/float64(span)*float64(plot.Dx())))
	}

	// Grid and y labels.
	for _, t := range ticks {
		y := ypos(t)
		hline(img, plot.Min.X, plot.Max.X, y, gridGray)
		l := axisLabel(t)
		text(img, plot.Min.X-6-len(l)*charW, y+4, l, black)
	}
	// Time ticks and labels.
	layout := "15:04"
	if span > 24*time.Hour {
		layout = "01-02 15:04"
	}
	for _, t := range timeTicks(start, end, 6) {
		x := xpos(t)
		vline(img, x, plot.Min.Y, plot.Max.Y, gridGray)
		l := t.UTC().Format(layout)
		text(img, x-len(l)*charW/2, plot.Max.Y+lineH, l, black)
	}
	hline(img, plot.Min.X, plot.Max.X, plot.Max.Y, axisGray)
	vline(img, plot.Min.X, plot.Min.Y, plot.Max.Y, axisGray)

	// Lines, broken where samples are missing (a gap over 2.5 steps).
	for i, s := range series {
		c := palette[i%len(palette)]
		gap := medianStep(s.Values) * 5 / 2
		for j := 1; j < len(s.Values); j++ {
			a, b := s.Values[j-1], s.Values[j]
			if !finite(float64(a.Value)) || !finite(float64(b.Value)) || (gap > 0 && b.Timestamp-a.Timestamp > gap) {
				continue
			}
			line(img, xpos(a.Timestamp.Time()), ypos(float64(a.Value)), xpos(b.Timestamp.Time()), ypos(float64(b.Value)), c, plot)
		}
		if len(s.Values) == 1 && finite(float64(s.Values[0].Value)) {
			x, y := xpos(s.Values[0].Timestamp.Time()), ypos(float64(s.Values[0].Value))
			fill(img, image.Rect(x-2, y-2, x+3, y+3).Intersect(plot), c)
		}
	}

	// Legend: only the labels that tell the series apart.
	colW := (o.Width - 2*padLeft) / legendCols
	names := legendNames(series)
	for i := range series {
		x := padLeft + (i%legendCols)*colW
		y := plot.Max.Y + lineH + 8 + (i/legendCols+1)*lineH
		fill(img, image.Rect(x, y-9, x+10, y+1), palette[i%len(palette)])
		text(img, x+14, y, truncateRunes(names[i], (colW-20)/charW), black)
	}

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode graph: %w", err)
	}
	return buf.Bytes(), nil
}

// legendNames names each series by the labels whose values differ between
// the series; one series keeps its full name.
func legendNames(series model.Matrix) []string {
	names := make([]string, len(series))
	if len(series) < 2 {
		for i, s := range series {
			names[i] = seriesName(s.Metric)
		}
		return names
	}
	differs := map[model.LabelName]bool{}
	for _, s := range series {
		for k, v := range s.Metric {
			for _, o := range series {
				if o.Metric[k] != v {
					differs[k] = true
				}
			}
		}
	}
	for i, s := range series {
		m := model.Metric{}
		for k, v := range s.Metric {
			if differs[k] {
				m[k] = v
			}
		}
		names[i] = seriesName(m)
	}
	return names
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// medianStep is the typical distance between samples.
func medianStep(ps []model.SamplePair) model.Time {
	if len(ps) < 2 {
		return 0
	}
	d := make([]model.Time, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		d = append(d, ps[i].Timestamp-ps[i-1].Timestamp)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// niceTicks returns about n round tick values covering [lo, hi] and the
// axis range they span.
func niceTicks(lo, hi float64, n int) ([]float64, float64, float64) {
	if hi == lo {
		pad := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-pad, hi+pad
		if lo < 0 && hi-pad >= 0 {
			lo = 0
		}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	stop := math.Ceil(hi/step) * step
	var ticks []float64
	for v := start; v <= stop+step/2; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return ticks, start, stop
}

// timeTicks returns about n round times between start and end.
func timeTicks(start, end time.Time, n int) []time.Time {
	span := end.Sub(start)
	step := time.Minute
	for _, s := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour} {
		step = s
		if span/s <= time.Duration(n) {
			break
		}
	}
	var out []time.Time
	for t := start.Truncate(step); !t.After(end); t = t.Add(step) {
		if !t.Before(start) {
			out = append(out, t)
		}
	}
	return out
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// truncateRunes shortens s to n characters; the bitmap font has ASCII
// only, so the ellipsis is three dots.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if n <= 3 || len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// axisLabel writes a tick value with an SI suffix (150M, 2.5k, 0.25), as
// dashboards do; the table has the exact values.
func axisLabel(v float64) string {
	a := math.Abs(v)
	for _, u := range []struct {
		f float64
		s string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.f {
			return strconv.FormatFloat(v/u.f, 'f', -1, 64) + u.s
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r, &image.Uniform{c}, image.Point{}, draw.Src)
}

// line draws a 2-pixel-wide line (Bresenham, doubled) clipped to clip.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, clip image.Rectangle) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		for _, p := range [...]image.Point{{x0, y0}, {x0 + 1, y0}, {x0, y0 + 1}} {
			if p.In(clip.Inset(-1)) {
				img.SetRGBA(p.X, p.Y, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
