extension Duration {
    /// The duration in seconds, as reports give every duration.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
