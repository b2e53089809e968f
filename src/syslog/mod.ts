/**
 * Syslog without sockets: {@linkcode SyslogFramer} frames TCP streams (RFC 6587, octet counting
 * or LF decided per frame), {@linkcode DatagramFramer} frames UDP datagrams, and
 * {@linkcode SyslogParser} reads RFC 5424 and RFC 3164 headers. The network inputs build on these.
 *
 * @module
 */

export {
  checkMaxMessage,
  DatagramFramer,
  DEFAULT_MAX_MESSAGE,
  MAX_LEN_DIGITS,
  MAX_MAX_MESSAGE,
  MIN_MAX_MESSAGE,
  SyslogFramer,
  type SyslogFramerOptions,
  type SyslogFrames,
  writeEscaped,
} from "./frame.ts";
export {
  FACILITY_NAMES,
  facilityName,
  ParsedSyslog,
  parseSyslog,
  type SdElement,
  SEVERITY_NAMES,
  severityName,
  type SyslogFormat,
  type SyslogMessage,
  SyslogParser,
  type SyslogParserOptions,
} from "./parse.ts";
