import Testing

/// Rotation: its tests are in the extensions in this folder, what they share in
/// `RotationFixtures` (ToolConfigTestSupport).
@Suite("Rotation")
struct RotationTests {}
