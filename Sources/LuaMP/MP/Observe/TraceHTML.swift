// TraceHTML: the trace as one self-contained HTML file (timeline + summary), written from a trace JSON file.
enum TraceHTML {
    static func write(trace: String, to html: String) throws {}
}
