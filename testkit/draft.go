package testkit

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/eventmodels"
)

// Draft is one event being built: an event of type E (a pointer type such
// as *eventmodels.JobCompleted) that is complete and valid from the start.
// Change it with With and the envelope setters, then take it with Build.
// A Draft is not safe for concurrent use.
type Draft[E eventmodels.Event] struct{ e E }

// NewDraft starts a Draft of an event of your own type: e as given, with
// the envelope fields it leaves zero filled from b the way the entry
// points fill them (event and correlation IDs, timestamp from b's clock, a
// user). EventType and SchemaVersion are yours to set; the clock advances.
//
//	d := testkit.NewDraft(b, &SiteCalibrated{Base: eventmodels.Base{EventType: "site.calibrated", SchemaVersion: 1}, Site: "VLA"})
func NewDraft[E eventmodels.Event](b *EventBuilder, e E) *Draft[E] {
	env := e.Envelope()
	d, done := b.next(env.EventType, env.SchemaVersion)
	defer done()
	if env.EventID == uuid.Nil {
		env.EventID = d.base.EventID
	}
	if env.CorrelationID == uuid.Nil {
		env.CorrelationID = d.base.CorrelationID
	}
	if env.Timestamp.IsZero() {
		env.Timestamp = d.base.Timestamp
	}
	if env.UserID == "" {
		env.UserID = d.base.UserID
	}
	return &Draft[E]{e: e}
}

// With calls fn on the event being built: any field, including invalid
// values for validation tests. A nil fn does nothing.
func (d *Draft[E]) With(fn func(e E)) *Draft[E] {
	if fn != nil {
		fn(d.e)
	}
	return d
}

// WithUser sets the envelope's user_id, who initiated the event.
func (d *Draft[E]) WithUser(userID string) *Draft[E] {
	d.e.Envelope().UserID = userID
	return d
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (d *Draft[E]) WithCorrelationID(id uuid.UUID) *Draft[E] {
	d.e.Envelope().CorrelationID = id
	return d
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (d *Draft[E]) WithEventID(id uuid.UUID) *Draft[E] {
	d.e.Envelope().EventID = id
	return d
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (d *Draft[E]) At(t time.Time) *Draft[E] {
	d.e.Envelope().Timestamp = eventmodels.NormalizeTime(t)
	return d
}

// Build returns a deep copy of the event as set so far, valid unless With
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (d *Draft[E]) Build() E { return deepCopy(d.e) }

// BuildValid returns Build() and the result of its Validate.
func (d *Draft[E]) BuildValid() (E, error) {
	e := d.Build()
	return e, e.Validate()
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (d *Draft[E]) MustBuild(t testing.TB) E {
	t.Helper()
	e := d.Build()
	if err := e.Validate(); err != nil {
		t.Fatalf("testkit: built an invalid %s: %v", e.Envelope().EventType, err)
	}
	return e
}

// deepCopy copies what v points to, with every slice, map and pointer
// inside copied too, so a built event shares nothing with its Draft.
func deepCopy[E any](v E) E {
	return copyValue(reflect.ValueOf(v)).Interface().(E)
}

func copyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(copyValue(v.Elem()))
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // unexported fields (none in events) stay shallow
		for i := range v.NumField() {
			if c.Field(i).CanSet() {
				c.Field(i).Set(copyValue(v.Field(i)))
			}
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(copyValue(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), copyValue(it.Value()))
		}
		return c
	}
	return v
}
