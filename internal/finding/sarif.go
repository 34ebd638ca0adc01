package finding

import (
	"encoding/json"
	"io"
)

// SARIFRun is what a SARIF document says about one run.
type SARIFRun struct {
	Version string   // moat's version
	Host    string   // the host the results are about
	Results []Result // only failed results are written
}

// WriteSARIF writes the findings as SARIF 2.1.0, for code-scanning UIs.
// Each check ID is a rule; each failed result is a SARIF result located at
// host://HOST/LAYER.
func WriteSARIF(w io.Writer, run SARIFRun) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string            `json:"id"`
		ShortDescription msg               `json:"shortDescription"`
		Help             msg               `json:"help"`
		Properties       map[string]string `json:"properties,omitempty"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations,omitempty"`
	}
	rules := []rule{}
	seen := map[string]bool{}
	results := []result{}
	for _, x := range run.Results {
		if !x.Finding() {
			continue
		}
		if !seen[x.ID] {
			seen[x.ID] = true
			props := map[string]string{"layer": x.Layer, "severity": x.Severity.String()}
			if x.Anchors.CIS != "" {
				props["cis"] = x.Anchors.CIS
			}
			if x.Anchors.Lynis != "" {
				props["lynis"] = x.Anchors.Lynis
			}
			rules = append(rules, rule{ID: x.ID, ShortDescription: msg{x.Title}, Help: msg{x.Fix}, Properties: props})
		}
		text := x.Title
		if x.Subject != "" {
			text += " [" + x.Subject + "]"
		}
		for _, e := range x.Evidence {
			text += "\n" + e
		}
		res := result{RuleID: x.ID, Level: sarifLevel(x.Severity), Message: msg{text}}
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = "host://" + run.Host + "/" + x.Layer
		res.Locations = []location{loc}
		results = append(results, res)
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "moat", "version": run.Version, "informationUri": "https://github.com/moat-sh/moat",
				"rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}
