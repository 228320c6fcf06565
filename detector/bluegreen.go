package detector

import (
	"fmt"
	"maps"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// phaseTracker records the Blue/Green phases of one target, per source (the
// Mode of the poller's events, e.g. which side it polls).
type phaseTracker struct {
	last map[string]string // observer, source -> last phase
	max  map[string]int    // observer, source -> highest rank seen
	list capped[report.Phase]
	// rows is the latest mysql.rds_topology read (a few rows): which
	// endpoint is blue and which green, to name servers by role.
	rows []string
}

// observe applies one phase observation; it emits a finding when the phase
// of the source changed.
func (p *phaseTracker) observe(d *Detector, ev *event.Event) {
	if p.last == nil {
		p.last, p.max = map[string]string{}, map[string]int{}
	}
	bg := ev.DBProbe.BlueGreen
	if len(bg.Rows) > 0 {
		p.rows = append(p.rows[:0], bg.Rows[:min(len(bg.Rows), maxTopologyRows)]...)
	}
	phase := bg.Phase
	if phase == "" {
		phase = bg.Status
	}
	source := ev.DBProbe.Mode
	// Each observer's poller goes through the phases on its own: merged
	// observers (several journals, Elasticsearch) lag one another, and one
	// behind another is no rollback.
	track := ev.Observer.Name + "\x00" + source
	prev, seen := p.last[track]
	if seen && prev == phase {
		return
	}
	p.last[track] = phase
	// Ranked by name or status alike, so that a phase going backwards is
	// reported as a rollback.
	rank, known := event.BlueGreenRank(phase)
	top, hadTop := p.max[track]
	rollback := known && hadTop && rank < top
	// After a rollback the deployment starts over: its next switchover
	// moves forward from the phase it fell back to.
	if known && (!hadTop || rank > top || rollback) {
		p.max[track] = rank
	}
	at := ev.Timestamp.UTC()
	if at.IsZero() {
		at = ev.Event.Start.UTC()
	}
	ph := report.Phase{At: at, Phase: phase, PrevPhase: prev, Source: source, Observer: ev.Observer.Name, Rollback: rollback}
	p.list.add(ph)
	target := ev.DBProbe.Target
	runID := ev.DBProbe.RunID
	if runID == "" {
		runID = d.runID
	}
	key := event.StreamKey{Observer: ev.Observer.Name, Target: target, Mode: source}
	msg := fmt.Sprintf("%s: Blue/Green phase %s at %s", target, phase, report.Clock(at))
	if prev != "" {
		msg = fmt.Sprintf("%s: Blue/Green phase %s -> %s at %s", target, prev, phase, report.Clock(at))
	}
	if rollback {
		msg += " (rollback)"
	}
	d.emit(&event.Event{
		Timestamp: at,
		Message:   msg,
		Event: event.Meta{
			ID:       findingID(runID, key, event.ActionBlueGreenPhase, at.UnixNano()),
			Kind:     event.KindState,
			Category: []string{"database"},
			Type:     []string{findingType(event.ActionBlueGreenPhase)},
			Dataset:  event.DatasetFinding,
			Action:   event.ActionBlueGreenPhase,
			Start:    at,
		},
		Observer: ev.Observer,
		Labels:   maps.Clone(ev.Labels),
		DBProbe: event.DBProbe{
			Schema:    event.Schema,
			RunID:     runID,
			Target:    target,
			Mode:      source,
			BlueGreen: &event.BlueGreen{Phase: bg.Phase, Status: bg.Status},
			Finding:   &event.Finding{At: ptr(at), Phase: phase, PrevPhase: prev, Rollback: rollback},
		},
	})
}

func (p *phaseTracker) snapshot() []report.Phase { return p.list.snapshot() }

// maxTopologyRows bounds the rows kept: a deployment has a blue and a
// green side, a few instances each.
const maxTopologyRows = 32
