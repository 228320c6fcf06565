package detector_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dbprobe/dbprobe/detector"
	"github.com/dbprobe/dbprobe/detector/detectortest"
	"github.com/dbprobe/dbprobe/event"
)

// decoded is the part of an event the Decoder promises to decode.
func decoded(e *event.Event) event.Event {
	out := event.Event{
		Timestamp: e.Timestamp,
		Event:     event.Meta{ID: e.Event.ID, Kind: e.Event.Kind, Action: e.Event.Action, Start: e.Event.Start, End: e.Event.End},
		Observer:  e.Observer,
		Labels:    e.Labels,
		DBProbe: event.DBProbe{
			Schema:    e.DBProbe.Schema,
			RunID:     e.DBProbe.RunID,
			Target:    e.DBProbe.Target,
			Mode:      e.DBProbe.Mode,
			Tick:      e.DBProbe.Tick,
			Scheduled: e.DBProbe.Scheduled,
			Server:    e.DBProbe.Server,
			Read:      e.DBProbe.Read,
			Write:     e.DBProbe.Write,
			Gap:       e.DBProbe.Gap,
		},
	}
	if f := e.DBProbe.Failure; f != nil {
		out.DBProbe.Failure = &event.Failure{Class: f.Class, Phase: f.Phase}
	}
	if len(out.Labels) == 0 {
		out.Labels = nil
	}
	if e.Error != nil {
		out.Error = &event.Error{Type: e.Error.Type}
	}
	if e.Destination != nil {
		out.Destination = &event.Destination{Address: e.Destination.Address, IP: e.Destination.IP}
	}
	if e.DBProbe.Latency != nil {
		l := e.DBProbe.Latency
		out.DBProbe.Latency = &event.Latency{Total: l.Total, DNS: l.DNS, Connect: l.Connect, Query: l.Query, Write: l.Write}
	}
	if e.DBProbe.DNS != nil {
		out.DBProbe.DNS = &event.DNS{Answers: e.DBProbe.DNS.Answers}
		if len(out.DBProbe.DNS.Answers) == 0 {
			out.DBProbe.DNS.Answers = nil
		}
	}
	if e.DBProbe.BlueGreen != nil {
		out.DBProbe.BlueGreen = &event.BlueGreen{Phase: e.DBProbe.BlueGreen.Phase, Status: e.DBProbe.BlueGreen.Status}
	}
	if e.DBProbe.Replication != nil {
		out.DBProbe.Replication = &event.Replicate{LagSeconds: e.DBProbe.Replication.LagSeconds}
	}
	return out
}

// sampleEvents covers every kind of line a journal holds: probes (up,
// failed, read-only, with and without DNS), gaps, Blue/Green status events
// and findings.
func sampleEvents(t testing.TB) []*event.Event {
	fresh, pooled, phases := detectortest.Switchover("run1", "obs1", t0, interval, 40)
	events := detectortest.ByCompletion(fresh.Events(), pooled.Events(), phases)
	d := detector.New(detector.Options{Reorder: time.Second})
	var findings []*event.Event
	for _, e := range events {
		findings = append(findings, d.Observe(e)...)
	}
	findings = append(findings, d.Flush()...)
	events = append(events, findings...)
	events[0].Labels = map[string]string{"az": "eu-west-1a", "team": "db"}
	events[1].Message = "a message with \"quotes\" and a \\ backslash"
	lag := 0.25
	events[2].DBProbe.Replication = &event.Replicate{LagSeconds: &lag}
	events[3].DBProbe.Replication = &event.Replicate{Error: "green unreachable"}
	for _, e := range events {
		if e.DBProbe.Server != nil {
			srv := *e.DBProbe.Server
			srv.AuroraServerID, srv.Role = "orders-instance-2", event.RoleReader
			e.DBProbe.Server = &srv
			break
		}
	}
	return events
}

func TestDecoderMatchesEncodingJSON(t *testing.T) {
	dec := detector.NewDecoder()
	for i, e := range sampleEvents(t) {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var want event.Event
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		got, err := dec.Decode(line)
		if err != nil {
			t.Fatalf("event %d: Decode: %v\n%s", i, err, line)
		}
		if g, w := decoded(got), decoded(&want); !reflect.DeepEqual(g, w) {
			t.Fatalf("event %d decodes to\n%+v\nwant\n%+v\nline %s", i, g, w, line)
		}
	}
}

func TestDecoderEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"escaped string falls back", `{"event":{"action":"pro\u0062e","kind":"event"},"dbprobe":{"tick":5}}`},
		{"key in other case", `{"dbprobe":{"Tick":7,"target":"orders"}}`},
		{"null pointers", `{"error":null,"destination":null,"dbprobe":{"server":null,"read":null,"dns":null,"gap":null}}`},
		{"null strings leave values", `{"dbprobe":{"target":"a","target":null}}`},
		{"repeated object merges", `{"dbprobe":{"server":{"identity":"x"},"server":{"hostname":"h"}}}`},
		{"repeated answers replace", `{"dbprobe":{"dns":{"answers":["a","b"],"answers":["c"]}}}`},
		{"whitespace", " { \"dbprobe\" : { \"tick\" : 3 , \"read\" : { \"ok\" : true } } } "},
		{"unknown nested values", `{"x":[1,{"y":[true,false,null,"s",-1.5e3]}],"dbprobe":{"finding":{"errors":{"a":1}},"tick":1}}`},
		{"invalid utf-8", "{\"dbprobe\":{\"target\":\"a\xffb\"}}"},
		{"big tick", `{"dbprobe":{"tick":1234567890123456789}}`},
		{"deep nesting", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"dbprobe":{"tick":2}}`},
	}
	dec := detector.NewDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want event.Event
			if err := json.Unmarshal([]byte(tc.line), &want); err != nil {
				t.Fatalf("test line is not valid JSON: %v", err)
			}
			got, err := dec.Decode([]byte(tc.line))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if g, w := decoded(got), decoded(&want); !reflect.DeepEqual(g, w) {
				t.Errorf("Decode = %+v\nwant %+v", g, w)
			}
		})
	}
	for _, bad := range []string{`{"dbprobe":{"tick":1}`, `not json`, `{"dbprobe":{"tick":"x"}}`, ``} {
		if _, err := dec.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = nil error, want one", bad)
		}
	}
}

// FuzzDecoder: wherever encoding/json decodes a line, the Decoder decodes
// the same fields to the same values.
func FuzzDecoder(f *testing.F) {
	for i, e := range sampleEvents(f) {
		if i%7 == 0 {
			line, _ := json.Marshal(e)
			f.Add(line)
		}
	}
	f.Add([]byte(`{"dbprobe":{"Tick":7,"tick":8,"server":{"port":null}}}`))
	dec := detector.NewDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		var want event.Event
		if json.Unmarshal(line, &want) != nil {
			return
		}
		got, err := dec.Decode(line)
		if err != nil {
			t.Fatalf("Decode(%q): %v; encoding/json decodes it", line, err)
		}
		if g, w := decoded(got), decoded(&want); !reflect.DeepEqual(g, w) {
			t.Fatalf("Decode(%q) = %+v\nwant %+v", line, g, w)
		}
	})
}

func BenchmarkDecoder(b *testing.B) {
	var lines [][]byte
	for _, e := range sampleEvents(b) {
		line, _ := json.Marshal(e)
		lines = append(lines, line)
	}
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.Run("Decoder", func(b *testing.B) {
		dec := detector.NewDecoder()
		b.SetBytes(size / int64(len(lines)))
		i := 0
		for b.Loop() {
			if _, err := dec.Decode(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(size / int64(len(lines)))
		i := 0
		for b.Loop() {
			var e event.Event
			if err := json.Unmarshal(lines[i%len(lines)], &e); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
