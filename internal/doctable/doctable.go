// Package doctable reads the markdown tables of dbprobe's docs, for the
// tests that keep the docs in step with the lists in the code.
package doctable

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Tables returns the markdown tables of the file at path, each as its rows
// (the header first, the --- line left out) of cells with the surrounding
// space removed.
func Tables(t testing.TB, path string) [][][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tables [][][]string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		if strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !in {
			tables = append(tables, nil)
			in = true
		}
		tables[len(tables)-1] = append(tables[len(tables)-1], cells)
	}
	return tables
}

// Rows returns the rows, without their headers, of the tables in the file
// at path whose first column is headed head. It fails the test when there
// are none.
func Rows(t testing.TB, path, head string) [][]string {
	t.Helper()
	var rows [][]string
	found := false
	for _, tb := range Tables(t, path) {
		if tb[0][0] == head {
			rows = append(rows, tb[1:]...)
			found = true
		}
	}
	if !found {
		t.Fatalf("%s has no table headed %q", path, head)
	}
	return rows
}

var codeRE = regexp.MustCompile("`([^`]+)`")

// Codes returns the `quoted` words of a cell, in order.
func Codes(s string) []string {
	var out []string
	for _, m := range codeRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
