// Package consoletest reads what the console view writes to a terminal
// back into the screen a person would see, for tests in a pseudo-terminal.
package consoletest

import (
	"strconv"
	"strings"
	"sync"
)

// Screen is the little of a VT100 the view relies on: printable text,
// CR, LF (scrolling at the bottom), cursor up (CSI n A), erase down (CSI
// J); colours (CSI ... m) are dropped. The test reads what the view wrote
// through a pseudo-terminal into it and compares what a person would see.
type Screen struct {
	mu         sync.Mutex
	rows, cols int
	cells      [][]rune
	row, col   int
	n          int // bytes consumed
	pending    []byte
}

func NewScreen(rows, cols int) *Screen {
	s := &Screen{rows: rows, cols: cols}
	for range rows {
		s.cells = append(s.cells, s.blank())
	}
	return s
}

func (s *Screen) blank() []rune { return []rune(strings.Repeat(" ", s.cols)) }

func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += len(p)
	s.pending = append(s.pending, p...)
	for len(s.pending) > 0 {
		used := s.step(s.pending)
		if used == 0 {
			break // an incomplete escape or rune: wait for more
		}
		s.pending = s.pending[used:]
	}
	return len(p), nil
}

// Consumed is how many bytes the screen has read.
func (s *Screen) Consumed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// step interprets one character or escape at the start of b and returns
// how many bytes it used.
func (s *Screen) step(b []byte) int {
	switch b[0] {
	case '\r':
		s.col = 0
		return 1
	case '\n':
		s.lineFeed()
		return 1
	case 0x1b:
		if len(b) < 2 {
			return 0
		}
		if b[1] != '[' {
			return 2
		}
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				s.csi(string(b[2:i]), b[i])
				return i + 1
			}
		}
		return 0
	}
	r, size := decodeRune(b)
	if size == 0 {
		return 0
	}
	if s.col >= s.cols {
		// Autowrap, as xterm does: the next character goes to the next row.
		s.col = 0
		s.lineFeed()
	}
	s.cells[s.row][s.col] = r
	s.col++
	return size
}

func decodeRune(b []byte) (rune, int) {
	r := []rune(string(b[:min(len(b), 4)]))
	if len(r) == 0 || (r[0] == '\uFFFD' && len(b) < 4) {
		return 0, 0
	}
	return r[0], len(string(r[0]))
}

func (s *Screen) lineFeed() {
	if s.row < s.rows-1 {
		s.row++
		return
	}
	s.cells = append(s.cells[1:], s.blank())
}

func (s *Screen) csi(params string, final byte) {
	n, err := strconv.Atoi(params)
	if err != nil || n < 1 {
		n = 1
	}
	switch final {
	case 'A':
		s.row = max(0, s.row-n)
	case 'J':
		s.cells[s.row] = append(s.cells[s.row][:s.col], []rune(strings.Repeat(" ", s.cols-s.col))...)
		for r := s.row + 1; r < s.rows; r++ {
			s.cells[r] = s.blank()
		}
	case 'm':
	default:
		panic("the view sent an escape the test screen does not know: CSI " + params + string(final))
	}
}

// String is the screen as text, trailing blanks trimmed.
func (s *Screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, r := range s.cells {
		b.WriteString(strings.TrimRight(string(r), " "))
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
