var key = "acme_live_wuyh7Bng1TTynNhFs4Kbl8Iai3CZhA6hE9g";
  "key": "GxihiuKvCd3Jdgcj6bF1d1cymD9",
const clientKey = 'zk-Qpr08OrKkE4E73sXLl2HjYwad0jdGB'
licenseKey: "zk-dZ1OYTNgfbSq4pS9mdOLRv70JPDXGVI67OE2"
client = Acme(key="zk-6gESrE1tJ7HdQWVPZSogbGyL9I4oLuU4F")
ACME_KEY = 'tk_1OXjETj3yfUasYxKRzpvPQJdXJg7NQ5518'
$config['key'] = 'zk-YaT8A7NzJ92cZkWKUvk1fivXtk';
  "key": "settings.notifications.emailDigestFrequency",
"publicKey": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErrIEj2sYznAD+v7G5sVrZ+x5fuoTfdDqv051lPf0"
cacheKey: "v1-deps-linux-d6269d2baf43"
"key": "3621236a943b139ba7d324711843914a880c2951",
key = "5e75fa19-437a-1d4c-2855-fa7f580ad10c"
<li key="navigation-item-primary-dropdown">
"key": "ArrowUpArrowDownEnterEscape"
var key = "xxxxxxxxxxxxxxxxxxxxxxxx"
