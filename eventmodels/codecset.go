package eventmodels

import (
	"errors"
	"fmt"
	"mime"
)

// ErrUnsupportedContentType is returned by CodecSet.For for a content type
// no codec in the set handles.
var ErrUnsupportedContentType = errors.New("eventmodels: unsupported content type")

// CodecSet picks a codec by content type. The first codec is the default
// for encoding. A CodecSet is immutable and safe for concurrent use.
type CodecSet struct {
	codecs []Codec
}

// NewCodecSet returns a set of codecs; the first is the default.
func NewCodecSet(def Codec, others ...Codec) *CodecSet {
	return &CodecSet{codecs: append([]Codec{def}, others...)}
}

// Default returns the codec used for encoding.
func (s *CodecSet) Default() Codec { return s.codecs[0] }

// For returns the codec for a content-type header value; parameters such as
// "; charset=utf-8" are ignored. An empty value selects the default codec.
func (s *CodecSet) For(contentType string) (Codec, error) {
	if contentType == "" {
		return s.Default(), nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrUnsupportedContentType, contentType, err)
	}
	for _, c := range s.codecs {
		if c.ContentType() == mt {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedContentType, contentType)
}
