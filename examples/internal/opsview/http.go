package opsview

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Path is where Handler serves the page; the series are at Path+"/api/series"
// and the page's files (uPlot and its licence) under Path+"/static/".
const Path = "/ops"

// Handler serves the page at /ops, its files under /ops/static/ and the
// series (JSON) at /ops/api/series. Mount it at both "/ops" and "/ops/".
func (v *View) Handler() http.Handler {
	sub, _ := fs.Sub(static, "static") // the embedded directory exists: cannot fail
	mux := http.NewServeMux()
	mux.Handle("GET "+Path+"/static/", http.StripPrefix(Path+"/static/", http.FileServerFS(sub)))
	mux.HandleFunc("GET "+Path+"/api/series", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(v.Series())
	})
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	}
	mux.HandleFunc("GET "+Path, page)
	mux.HandleFunc("GET "+Path+"/{$}", page)
	return mux
}
