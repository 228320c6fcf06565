package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// maxCountedRows bounds how many rows a read check counts, or more when
// expect_rows asks for more: past it the count is only known to be larger.
const maxCountedRows = 10000

// ReadCheck is a target's own read statement, as its application would
// run it, and what it must return. Config validation has made sure the
// statement only reads; it also runs in a read-only transaction, so a
// function with side effects fails (1792) instead of writing.
type ReadCheck struct {
	Statement string
	// ExpectRows, when set, is the exact number of rows it must return.
	ExpectRows *int
	// ExpectValue, when set, is what the first column of the first row
	// must be, as text (NULL is never equal).
	ExpectValue *string
}

// ResultError is a read check whose statement ran but did not return what
// was expected: the database answered, not as the application needs.
type ResultError struct{ Msg string }

func (e *ResultError) Error() string { return "read check: " + e.Msg }

// run runs the statement on conn inside START TRANSACTION READ ONLY and
// checks its result. The transaction always ends with a ROLLBACK (nothing
// to keep), also after a failure, so a pooled connection is clean for the
// next probe.
func (r *ReadCheck) run(ctx context.Context, conn driver.Conn) (err error) {
	x, ok := conn.(driver.ExecerContext)
	q, ok2 := conn.(driver.QueryerContext)
	if !ok || !ok2 {
		return errors.New("driver connection cannot query")
	}
	if _, err := x.ExecContext(ctx, "START TRANSACTION READ ONLY", nil); err != nil {
		return err
	}
	defer func() {
		if _, rerr := x.ExecContext(ctx, "ROLLBACK", nil); rerr != nil && err == nil {
			err = rerr
		}
	}()
	rows, err := q.QueryContext(ctx, r.Statement, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	n := 0
	var first driver.Value
	limit := maxCountedRows
	if r.ExpectRows != nil {
		// Count one past what is expected, or a correct answer larger
		// than the bound would fail every probe.
		limit = max(limit, *r.ExpectRows)
	}
	for n <= limit {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		if n == 0 && len(dest) > 0 {
			first = dest[0]
			if b, ok := first.([]byte); ok {
				first = string(b) // dest's buffer is reused by the next row
			}
		}
		n++
	}
	if r.ExpectRows != nil && n != *r.ExpectRows {
		if n > limit {
			return &ResultError{Msg: fmt.Sprintf("more than %d rows, want %d", limit, *r.ExpectRows)}
		}
		return &ResultError{Msg: fmt.Sprintf("%d rows, want %d", n, *r.ExpectRows)}
	}
	if r.ExpectValue != nil {
		switch {
		case n == 0:
			return &ResultError{Msg: fmt.Sprintf("no row, want first value %q", *r.ExpectValue)}
		case first == nil:
			return &ResultError{Msg: fmt.Sprintf("first value NULL, want %q", *r.ExpectValue)}
		case text(first) != *r.ExpectValue:
			return &ResultError{Msg: fmt.Sprintf("first value %q, want %q", truncate(text(first), 64), *r.ExpectValue)}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
