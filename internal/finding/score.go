package finding

import "math"

// Score is a layer's or the whole report's score, 0 to 100.
//
// The formula: every pass or fail result weighs by its check's severity
// (critical 10, high 6, medium 3, low 1, info 0). A layer scores
// 100 × passed weight ÷ evaluated weight, rounded down; results that are
// n/a or unknown are not evaluated. The overall score is the same ratio over
// every layer's results together, so a layer with more at stake counts more.
// A layer with nothing evaluated scores -1 (shown as "–").
type Score struct {
	Layer  string `json:"layer"`
	Score  int    `json:"score"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
}

// Scores computes per-layer scores, in the order of layers (layers not
// listed are left out of the list but count in the overall score), and the
// overall score.
func Scores(results []Result, layers []string) (per []Score, overall int) {
	type acc struct{ got, total, passed, failed int }
	by := map[string]*acc{}
	var all acc
	for _, r := range results {
		a := by[r.Layer]
		if a == nil {
			a = &acc{}
			by[r.Layer] = a
		}
		w := r.Severity.Weight()
		switch r.Status {
		case Pass:
			a.got += w
			a.total += w
			a.passed++
			all.got += w
			all.total += w
		case Fail:
			a.total += w
			a.failed++
			all.total += w
		}
	}
	ratio := func(a acc) int {
		if a.total == 0 {
			return -1
		}
		return int(math.Floor(100 * float64(a.got) / float64(a.total)))
	}
	for _, l := range layers {
		if a, ok := by[l]; ok {
			per = append(per, Score{Layer: l, Score: ratio(*a), Passed: a.passed, Failed: a.failed})
		}
	}
	return per, ratio(all)
}

// ScoreText renders a score for people: "73/100", or "–" when nothing was
// evaluated.
func ScoreText(s int) string {
	if s < 0 {
		return "–"
	}
	return itoa(s) + "/100"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
