package finding

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestScores(t *testing.T) {
	rs := []Result{
		{Layer: "a", Severity: Critical, Status: Fail},
		{Layer: "a", Severity: Low, Status: Pass},
		{Layer: "b", Severity: High, Status: Pass},
		{Layer: "b", Severity: High, Status: Unknown}, // not scored
		{Layer: "c", Severity: Medium, Status: NA},
		{Layer: "z", Severity: Medium, Status: Fail}, // not listed: counts overall only
	}
	per, overall := Scores(rs, []string{"b", "a", "c"})
	want := []Score{{"b", 100, 1, 0}, {"a", 9, 1, 1}, {"c", -1, 0, 0}}
	if len(per) != len(want) {
		t.Fatalf("per %v", per)
	}
	for i := range want {
		if per[i] != want[i] {
			t.Errorf("layer %d: %+v, want %+v", i, per[i], want[i])
		}
	}
	// passed 1+6 of 10+1+6+3 = 7/20
	if overall != 35 {
		t.Errorf("overall %d, want 35", overall)
	}
	if ScoreText(-1) != "–" || ScoreText(0) != "0/100" || ScoreText(73) != "73/100" {
		t.Errorf("ScoreText")
	}
	if w, ok := Worst(rs); !ok || w != Critical {
		t.Errorf("Worst %v %v", w, ok)
	}
}

func TestSARIFListsOnlyFindings(t *testing.T) {
	var b bytes.Buffer
	err := WriteSARIF(&b, SARIFRun{Version: "v1", Host: "h", Results: []Result{
		{ID: "X-1", Layer: "a", Severity: High, Status: Fail, Title: "t", Subject: "s", Evidence: []string{"e"}, Fix: "f"},
		{ID: "X-1", Layer: "a", Severity: High, Status: Fail, Title: "t", Subject: "s2"},
		{ID: "X-2", Layer: "a", Severity: Low, Status: Pass, Title: "ok"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Runs[0]
	if len(r.Tool.Driver.Rules) != 1 || len(r.Results) != 2 || r.Results[0].Level != "error" {
		t.Errorf("SARIF: %s", b.String())
	}
	// No findings: still arrays, as SARIF viewers expect.
	b.Reset()
	WriteSARIF(&b, SARIFRun{})
	if !bytes.Contains(b.Bytes(), []byte(`"results": []`)) || !bytes.Contains(b.Bytes(), []byte(`"rules": []`)) {
		t.Errorf("empty SARIF: %s", b.String())
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Info, Low, Medium, High, Critical} {
		var got Severity
		if err := got.UnmarshalText([]byte(s.String())); err != nil || got != s {
			t.Errorf("%v round trip: %v %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Errorf("unknown severity accepted")
	}
	if Severity(9).Weight() != 0 || Severity(-1).String() == "" {
		t.Errorf("out-of-range severities")
	}
}
