package broker

// Header is one message header: a name and its value.
type Header struct {
	Key   string
	Value string
}

// Headers are a message's headers, in order. Names are case-sensitive;
// a name appears once when set through Set (Kafka allows a name twice on
// the wire; Get then returns the first). A slice rather than a map: a
// message carries about ten headers, which a slice holds and searches
// faster than a map builds them, and it keeps their order.
//
// Build them with a literal (broker.Headers{{Key: "ce_type", Value: "job.queued"}}) or
// Set; read them with Get or Lookup, or range over them.
type Headers []Header

// Get returns the value of the first header named key, or "".
func (h Headers) Get(key string) string {
	for i := range h {
		if h[i].Key == key {
			return h[i].Value
		}
	}
	return ""
}

// Lookup returns the value of the first header named key and whether
// there is one.
func (h Headers) Lookup(key string) (string, bool) {
	for i := range h {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return "", false
}

// Set gives the header named key the value, replacing every header of
// that name, or appends it.
func (h *Headers) Set(key, value string) {
	s := *h
	for i := range s {
		if s[i].Key == key {
			s[i].Value = value
			for j := len(s) - 1; j > i; j-- {
				if s[j].Key == key {
					s = append(s[:j], s[j+1:]...)
				}
			}
			*h = s
			return
		}
	}
	*h = append(s, Header{key, value})
}

// Del removes every header named key.
func (h *Headers) Del(key string) {
	s := (*h)[:0]
	for _, x := range *h {
		if x.Key != key {
			s = append(s, x)
		}
	}
	clear((*h)[len(s):])
	*h = s
}

// Clone returns a copy that can be changed without affecting h.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	return append(make(Headers, 0, len(h)), h...)
}

// Map returns the headers as a map (the first value of a repeated name).
func (h Headers) Map() map[string]string {
	m := make(map[string]string, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		m[h[i].Key] = h[i].Value
	}
	return m
}

// HeadersFrom returns the headers of m, sorted by name (a map has no
// order).
func HeadersFrom(m map[string]string) Headers {
	h := make(Headers, 0, len(m))
	for k, v := range m {
		h = append(h, Header{k, v})
	}
	sortHeaders(h)
	return h
}

func sortHeaders(h Headers) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].Key < h[j-1].Key; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

// Keys returns the header names, in order (for propagation carriers).
func (h Headers) Keys() []string {
	out := make([]string, len(h))
	for i := range h {
		out[i] = h[i].Key
	}
	return out
}

// HeaderCarrier adapts Headers to OpenTelemetry's TextMapCarrier (Get,
// Set, Keys), for injecting and extracting trace context.
type HeaderCarrier struct{ H *Headers }

// Get returns the value of key.
func (c HeaderCarrier) Get(key string) string { return c.H.Get(key) }

// Set sets key to value.
func (c HeaderCarrier) Set(key, value string) { c.H.Set(key, value) }

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string { return c.H.Keys() }
