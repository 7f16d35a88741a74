import Foundation

/// The distribution of time to first token per target, as an SVG of cumulative curves (share
/// of requests answered within x ms); x runs to the largest P99 so the tails stay readable.
public enum TTFTPlot {
    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]

    public static func svg(title: String, series: [(name: String, ttftMs: [Double])]) -> String {
        let (width, height, left, right, top, bottom) = (760.0, 440.0, 64.0, 200.0, 36.0, 48.0)
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let p99s = series.compactMap { s -> Double? in
            let sorted = s.ttftMs.sorted()
            return sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
        }
        let xMax = niceCeiling(max(p99s.max() ?? 1, 1))
        func x(_ ms: Double) -> Double { left + min(ms, xMax) / xMax * plotWidth }
        func y(_ fraction: Double) -> Double { top + (1 - fraction) * plotHeight }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="14">\(escape(title))</text>

            """
        for tick in 0...5 {
            let ms = xMax * Double(tick) / 5
            svg += "<line x1=\"\(x(ms))\" y1=\"\(top)\" x2=\"\(x(ms))\" y2=\"\(top + plotHeight)\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(x(ms))\" y=\"\(top + plotHeight + 16)\" text-anchor=\"middle\">\(Int(ms.rounded()))</text>\n"
            let fraction = Double(tick) / 5
            svg += "<line x1=\"\(left)\" y1=\"\(y(fraction))\" x2=\"\(left + plotWidth)\" y2=\"\(y(fraction))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y(fraction) + 4)\" text-anchor=\"end\">\(Int(fraction * 100))%</text>\n"
        }
        svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">time to first token (ms)</text>\n"
        svg += "<text x=\"16\" y=\"\(top + plotHeight / 2)\" transform=\"rotate(-90 16 \(top + plotHeight / 2))\" text-anchor=\"middle\">requests answered</text>\n"
        for (index, item) in series.enumerated() {
            let colour = colours[index % colours.count]
            let sorted = item.ttftMs.sorted()
            guard !sorted.isEmpty else { continue }
            // At most ~400 points a curve: enough for the eye, small files.
            let step = max(1, sorted.count / 400)
            var points = ["\(x(0)),\(y(0))"]
            for i in stride(from: 0, to: sorted.count, by: step) {
                points.append(String(format: "%.1f,%.1f", x(sorted[i]), y(Double(i + 1) / Double(sorted.count))))
            }
            points.append(String(format: "%.1f,%.1f", x(sorted.last!), y(1)))
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            let legendY = top + 16 + Double(index) * 20
            svg += "<line x1=\"\(left + plotWidth + 16)\" y1=\"\(legendY - 4)\" x2=\"\(left + plotWidth + 40)\" y2=\"\(legendY - 4)\" stroke=\"\(colour)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(left + plotWidth + 46)\" y=\"\(legendY)\">\(escape(item.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `value`.
    static func niceCeiling(_ value: Double) -> Double {
        let power = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 5, 10] where factor * power >= value { return factor * power }
        return 10 * power
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
