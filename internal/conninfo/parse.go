package conninfo

import (
	"fmt"
	"net/url"
	"strings"
)

// parseURL turns a postgres:// URL into libpq keywords. It is written out rather
// than using net/url alone because libpq URLs allow several comma-separated hosts.
func parseURL(raw string) (map[string]string, error) {
	rest := raw[strings.Index(raw, "://")+3:]
	params := map[string]string{}
	authority := rest
	var pathQuery string
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	if strings.Contains(pathQuery, "@") {
		// postgres://u:abc/def@host/db: the password's "/" ended the host
		// part, and what follows would be read as the database name, the
		// password with it. Said without echoing any of it.
		return nil, fmt.Errorf("an '@' comes after the host part: percent-encode '/', '?', '#' and '@' in the user name and password (%%2F, %%3F, %%23, %%40), and '@' elsewhere (%%40)")
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		u, err := url.PathUnescape(user)
		if err != nil {
			return nil, fmt.Errorf("invalid user name encoding")
		}
		if u != "" {
			params["user"] = u
		}
		if hasPass {
			p, err := url.PathUnescape(pass)
			if err != nil {
				return nil, fmt.Errorf("invalid password encoding (percent-encode special characters)")
			}
			params["password"] = p
		}
	}
	if authority != "" {
		var hosts, ports []string
		for _, hp := range strings.Split(authority, ",") {
			host, port, err := splitHostPort(hp)
			if err != nil {
				return nil, err
			}
			hosts = append(hosts, host)
			ports = append(ports, port)
		}
		params["host"] = strings.Join(hosts, ",")
		if strings.Join(ports, "") != "" {
			for i := range ports {
				if ports[i] == "" {
					ports[i] = "5432"
				}
			}
			params["port"] = strings.Join(ports, ",")
		}
	}
	path, query, _ := strings.Cut(pathQuery, "?")
	if db := strings.TrimPrefix(path, "/"); db != "" {
		d, err := url.PathUnescape(db)
		if err != nil {
			return nil, fmt.Errorf("invalid database name encoding")
		}
		params["dbname"] = d
	}
	if query != "" {
		values, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("invalid query parameters: %v", err)
		}
		for k, v := range values {
			if len(v) > 0 {
				params[k] = v[len(v)-1]
			}
		}
	}
	return params, nil
}

func splitHostPort(hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return "", "", fmt.Errorf("missing ']' in IPv6 host %q", hp)
		}
		host = hp[1:end]
		rest := hp[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", fmt.Errorf("unexpected %q after IPv6 host", rest)
			}
			port = rest[1:]
		}
	} else if h, p, ok := strings.Cut(hp, ":"); ok {
		host, port = h, p
	} else {
		host = hp
	}
	if port != "" {
		for _, r := range port {
			if r < '0' || r > '9' {
				return "", "", fmt.Errorf("invalid port %q", port)
			}
		}
	}
	h, err := url.PathUnescape(host)
	if err != nil {
		return "", "", fmt.Errorf("invalid host encoding")
	}
	return h, port, nil
}

// parseKeywordValue reads libpq's "key=value key2='quoted value'" form.
func parseKeywordValue(s string) (map[string]string, error) {
	params := map[string]string{}
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return params, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("missing \"=\" after %q", key)
		}
		i++
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '\'' {
					i++
					closed = true
					break
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value for %q", key)
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		if key == "" {
			return nil, fmt.Errorf("empty keyword")
		}
		params[key] = val.String()
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
