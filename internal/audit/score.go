package audit

import "github.com/moat-sh/moat/internal/finding"

// Score is a layer's or the host's score, 0 to 100 (the formula:
// finding.Scores).
type Score = finding.Score

// Scores computes per-layer scores (in Layers order) and the overall score.
func Scores(results []Result) (layers []Score, overall int) {
	return finding.Scores(results, Layers)
}
