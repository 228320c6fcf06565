package detector

import (
	"time"

	"github.com/dbprobe/dbprobe/event"
	"github.com/dbprobe/dbprobe/report"
)

// StopStream ends a stream that stops before the run does (a config reload
// removed or changed its target): its buffered events are released, and
// what is still open (interruption windows, read-only, stale connection)
// ends "stopped", as after a gap: nothing is known of what followed. If
// the stream comes back (a changed target restarts), it starts as after a
// gap, its first tick learnt anew. Call it once every event the stream
// emitted has been observed. It returns the findings it completes.
func (d *Detector) StopStream(k event.StreamKey) []*event.Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.streams[k]
	if s == nil {
		return nil
	}
	// Everything observed so far is analysed (other streams' events too:
	// they are only released a jitter allowance early).
	d.release(true)
	s.resolveHoles(d.watermark, true)
	s.tgt.judgeStale(d.opts.Reorder, true)
	tick := s.next - 1
	for _, g := range []*signal{&s.read, &s.write} {
		if g.cur != nil {
			g.stop(s, tick)
		}
		g.afterGap = true
	}
	if s.ro.cur != nil {
		s.ro.close(s, time.Time{}, tick, report.EndsStopped)
	}
	if s.stale.cur != nil {
		s.stale.close(s, nil, tick, report.EndsStopped)
	}
	s.id.gap()
	s.dns.gap()
	s.nextKnown, s.ahead = false, nil
	return d.take()
}
