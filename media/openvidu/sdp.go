package openvidu

import (
	"strings"
)

// restrictCodec rewrites an SDP offer so that its video sections offer only codec
// (e.g. "VP8") and the retransmission payload types tied to it, as OpenVidu does
// with its forced codec (video.md §1.3, §10 interop notes): a forwarding media node
// can only serve every subscriber if every publisher sends what all of them
// decode. Sections that do not offer the codec, and offers when codec is "", are
// left alone.
func restrictCodec(offer, codec string) string {
	if codec == "" {
		return offer
	}
	nl := "\r\n"
	if !strings.Contains(offer, "\r\n") {
		nl = "\n"
	}
	lines := strings.Split(strings.TrimRight(offer, "\r\n"), nl)
	var out []string
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "m=") {
			out = append(out, lines[i])
			i++
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "m=") {
			j++
		}
		out = append(out, restrictSection(lines[i:j], codec)...)
		i = j
	}
	return strings.Join(out, nl) + nl
}

func restrictSection(sec []string, codec string) []string {
	m := strings.Fields(sec[0])
	if len(m) < 4 || m[0] != "m=video" {
		return sec
	}
	keep := map[string]bool{}
	apt := map[string]string{} // rtx payload type -> the payload type it repairs
	for _, l := range sec[1:] {
		if v, ok := strings.CutPrefix(l, "a=rtpmap:"); ok {
			pt, enc, _ := strings.Cut(v, " ")
			name, _, _ := strings.Cut(enc, "/")
			if strings.EqualFold(name, codec) {
				keep[pt] = true
			}
		}
		if v, ok := strings.CutPrefix(l, "a=fmtp:"); ok {
			pt, params, _ := strings.Cut(v, " ")
			for _, kv := range strings.Split(params, ";") {
				if a, ok := strings.CutPrefix(strings.TrimSpace(kv), "apt="); ok {
					apt[pt] = a
				}
			}
		}
	}
	if len(keep) == 0 {
		return sec
	}
	for pt, a := range apt {
		if keep[a] {
			keep[pt] = true
		}
	}
	fmts := m[:3]
	for _, pt := range m[3:] {
		if keep[pt] {
			fmts = append(fmts, pt)
		}
	}
	out := []string{strings.Join(fmts, " ")}
	for _, l := range sec[1:] {
		if pt, ok := payloadAttr(l); ok && !keep[pt] {
			continue
		}
		out = append(out, l)
	}
	return out
}

// payloadAttr returns the payload type a per-codec attribute line is about.
func payloadAttr(l string) (string, bool) {
	for _, p := range []string{"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"} {
		if v, ok := strings.CutPrefix(l, p); ok {
			pt, _, _ := strings.Cut(v, " ")
			if pt == "*" {
				return "", false
			}
			return pt, true
		}
	}
	return "", false
}
