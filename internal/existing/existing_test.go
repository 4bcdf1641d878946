package existing

import (
	"reflect"
	"strings"
	"testing"
)

func obj(kind, schema, name string) Object {
	id := name
	if schema != "" {
		id = schema + "." + name
	}
	return Object{Kind: kind, Schema: schema, Name: name, Identity: id}
}

func ext(name, schema, version string) Object {
	return Object{Kind: "extension", Name: name, Identity: name, ExtSchema: schema, Version: version}
}

func names(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.String())
	}
	return out
}

// The template's objects (an extension a DBA put into template1) are not the
// database's own.
func TestBeyondTheTemplate(t *testing.T) {
	template := []Object{ext("hstore", "public", "1.8")}
	db := []Object{ext("hstore", "public", "1.8"), obj("schema", "", "mine")}
	if got := names(Beyond(db, template)); !reflect.DeepEqual(got, []string{"schema mine"}) {
		t.Errorf("beyond the template: %v", got)
	}
}

func TestJudge(t *testing.T) {
	src := Source{
		Schemas:    []string{"public", "bar", "With a space", "extensions", "app"},
		Extensions: []Object{ext("pgcrypto", "extensions", "1.3"), ext("citext", "public", "1.6")},
	}
	cases := []struct {
		name                       string
		target                     []Object
		kept, untouched, conflicts []string
	}{
		{name: "pagila's pre-created empty schemas are kept",
			target: []Object{obj("schema", "", "bar"), obj("schema", "", "With a space")},
			kept:   []string{"schema With a space", "schema bar"}},
		{name: "a Supabase-like database: extensions schema, extra schemas",
			target: []Object{obj("schema", "", "extensions"), ext("pgcrypto", "extensions", "1.3"), ext("pg_graphql", "extensions", "1.5"),
				obj("schema", "", "auth"), obj("table", "auth", "users"), obj("function", "auth", "uid()")},
			kept:      []string{"extension pgcrypto", "schema extensions"},
			untouched: []string{"extension pg_graphql", "schema auth"}},
		{name: "the issue's repro: a schema the source lacks stays, with its function and type",
			target:    []Object{obj("schema", "", "mine"), obj("function", "mine", "important()"), obj("type", "mine", "mood"), obj("schema", "", "bar")},
			kept:      []string{"schema bar"},
			untouched: []string{"schema mine"}},
		{name: "a table in a schema the source has is a conflict, and so is its schema",
			target:    []Object{obj("schema", "", "app"), obj("table", "app", "orders"), obj("table", "public", "precious")},
			conflicts: []string{"table app.orders (the source has one of this schema)", "table public.precious (the source has one of this schema)"}},
		{name: "an extension in another schema than the source's",
			target:    []Object{ext("citext", "extensions", "1.6")},
			conflicts: []string{"extension citext (in schema extensions here, public on the source)"}},
		{name: "objects without a schema: a large object, a publication",
			target:    []Object{{Kind: "large object", Identity: "16500"}, {Kind: "publication", Name: "pub", Identity: "pub"}},
			conflicts: []string{"large object 16500", "publication pub"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.target, src)
			var conflicts []string
			for _, x := range v.Conflicts {
				conflicts = append(conflicts, x.String())
			}
			if got := names(v.Kept); !reflect.DeepEqual(got, c.kept) {
				t.Errorf("kept %v, want %v", got, c.kept)
			}
			if got := names(v.Untouched); !reflect.DeepEqual(got, c.untouched) {
				t.Errorf("untouched %v, want %v", got, c.untouched)
			}
			if !reflect.DeepEqual(conflicts, c.conflicts) {
				t.Errorf("conflicts %v, want %v", conflicts, c.conflicts)
			}
		})
	}
}

func TestVersionNotesAndDescribe(t *testing.T) {
	src := Source{Schemas: []string{"public"}, Extensions: []Object{ext("citext", "public", "1.6")}}
	v := Judge([]Object{ext("citext", "public", "1.5")}, src)
	notes := v.VersionNotes(src)
	if len(notes) != 1 || !strings.Contains(notes[0], `ALTER EXTENSION "citext" UPDATE TO '1.6'`) {
		t.Errorf("version notes: %v", notes)
	}
	var many []Conflict
	for i := 0; i < 13; i++ {
		many = append(many, Conflict{Object: obj("table", "public", "t"+string(rune('a'+i)))})
	}
	if d := Describe(many); !strings.HasSuffix(d, "table public.tj, and 3 more") {
		t.Errorf("describe: %s", d)
	}
}
