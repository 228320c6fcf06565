package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSON writes the report in its versioned JSON form (docs/report.md).
func JSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	// The verdicts and the consensus are derived from the rest, so a Report does not hold
	// them: they are added here, as every other format adds them.
	verdicts := Verdicts(rep)
	doc := struct {
		*Report
		Verdicts  []Verdict         `json:"verdicts"`
		Consensus []ConsensusWindow `json:"consensus"`
		Fleet     []FleetRow        `json:"fleet"`
	}{rep, verdicts, Consensus(rep), fleet(rep, verdicts)}
	if doc.Consensus == nil {
		doc.Consensus = []ConsensusWindow{}
	}
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("render json report: %w", err)
	}
	return nil
}
