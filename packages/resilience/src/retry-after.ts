// Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, read strictly.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// The three HTTP-date forms RFC 9110 (5.6.7) tells recipients to accept.
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC_850 = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

function httpDate(value: string, now: number): number | undefined {
  let m: RegExpExecArray | null;
  if ((m = IMF_FIXDATE.exec(value))) return utc(Number(m[3]), m[2], m[1], m[4], m[5], m[6]);
  if ((m = ASCTIME.exec(value))) return utc(Number(m[6]), m[1], m[2], m[3], m[4], m[5]);
  if ((m = RFC_850.exec(value))) {
    // A two-digit year more than 50 years ahead is in the past century (RFC 9110).
    const thisYear = new Date(now).getUTCFullYear();
    const year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    return utc(year > thisYear + 50 ? year - 100 : year, m[2], m[1], m[4], m[5], m[6]);
  }
  return undefined;
}

function utc(year: number, mon?: string, dayText?: string, hourText?: string, minuteText?: string, secondText?: string): number | undefined {
  const month = MONTHS.indexOf(mon ?? '');
  const [day, hour, minute, second] = [Number(dayText), Number(hourText), Number(minuteText), Number(secondText)] as const;
  if (month < 0 || !(hour <= 23 && minute <= 59 && second <= 60)) return undefined;
  const at = Date.UTC(year, month, day, hour, minute, second);
  // Date.UTC rolls 31 Feb over to March; a date that moved was not a date.
  return new Date(at).getUTCDate() === day ? at : undefined;
}

/**
 * Reads a Retry-After header: delay-seconds or an HTTP-date, as milliseconds from `now`.
 * A date in the past gives 0; anything unreadable gives `undefined` (fall back to the backoff).
 * @example
 * parseRetryAfter('120', Date.now()); // 120_000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('2015-10-21T07:27:00Z')); // 60_000
 * parseRetryAfter('soon', Date.now()); // undefined
 */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  const value = header?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = httpDate(value, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}
