package buildinfo

// Release is the latest release this source is, or is based on: the top
// versioned entry of CHANGELOG.md (release_test.go checks that they agree).
// Making a release moves both first, and tools/release refuses a tag that
// differs. A build that is not a tagged release reports Release with its
// commit as build metadata ("v0.5.0+c60ee50a1b2c"), never a bare "dev":
// tags do not travel with every checkout.
const Release = "v0.5.0"
