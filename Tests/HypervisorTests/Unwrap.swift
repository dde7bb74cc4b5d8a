import Testing

/// `#require` for an optional produced by a mutating call, which the macro cannot take directly
/// (it evaluates its argument inside a closure, where `self` is immutable).
func unwrap<T>(_ value: T?, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
  try #require(value, sourceLocation: sourceLocation)
}
