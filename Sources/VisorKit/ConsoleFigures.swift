/// Figures the benchmarks read back from a run's console.
enum ConsoleFigures {
  /// The decimal number right after `marker` in the first line containing it.
  static func number(after marker: String, in lines: [String]) -> Double? {
    guard let line = lines.first(where: { $0.contains(marker) }), let range = line.range(of: marker) else { return nil }
    return Double(line[range.upperBound...].prefix { $0.isNumber })
  }
}
