package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// JSON writes the report in its versioned JSON form (docs/report.md).
//
// The streams, nearly all of a fleet's report, are encoded one at a time:
// encoding/json holds a whole document twice while it indents it, which
// made the final report of 1000 streams the peak of the process's memory.
func JSON(w io.Writer, rep *Report) error {
	// The verdicts and the consensus are derived from the rest, so a Report does not hold
	// them: they are added here, as every other format adds them.
	verdicts := Verdicts(rep)
	rest := *rep
	rest.Streams = []Stream{}
	doc := struct {
		*Report
		Verdicts  []Verdict         `json:"verdicts"`
		Consensus []ConsensusWindow `json:"consensus"`
		Fleet     []FleetRow        `json:"fleet"`
	}{&rest, verdicts, Consensus(rep), fleet(rep, verdicts)}
	if doc.Consensus == nil {
		doc.Consensus = []ConsensusWindow{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("render json report: %w", err)
	}
	// The streams' place: a top-level key is indented by two spaces.
	const empty = "\n  \"streams\": [],"
	head, tail, ok := bytes.Cut(buf.Bytes(), []byte(empty))
	if !ok {
		return fmt.Errorf("render json report: no place for the streams")
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	var sb bytes.Buffer
	enc = json.NewEncoder(&sb)
	enc.SetIndent("    ", "  ")
	enc.SetEscapeHTML(false)
	sep, end := "\n  \"streams\": [\n    ", "\n  ],"
	if len(rep.Streams) == 0 {
		sep, end = "", "\n  \"streams\": [],"
	}
	for i := range rep.Streams {
		sb.Reset()
		sb.WriteString(sep)
		if err := enc.Encode(&rep.Streams[i]); err != nil {
			return fmt.Errorf("render json report: %w", err)
		}
		sb.Truncate(sb.Len() - 1) // Encode's newline
		if _, err := w.Write(sb.Bytes()); err != nil {
			return err
		}
		sep = ",\n    "
	}
	if _, err := io.WriteString(w, end); err != nil {
		return err
	}
	_, err := w.Write(tail)
	return err
}
