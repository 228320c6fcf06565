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
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("render json report: %w", err)
	}
	return nil
}
